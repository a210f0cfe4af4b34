"""How closely one event table (e.g. simulated) reproduces another (e.g. real).

`describe` reduces a table to the statistics that the simulator is fitted on:

  samples (compared by the two-sample Kolmogorov-Smirnov distance, 0..1)
    within_session_gap   seconds between consecutive events of a session
    between_session_gap  seconds between consecutive sessions of a user
    session_length       events per session
    events_per_user      events per user
    sessions_per_user    sessions per user
    top_category_share   per user, share of their events in their top category
    distinct_category_share  per user, distinct categories / events
    revisit_distance     events between a user's touches of the same item
    item_popularity      per distinct item, how many users touched it

  distributions (compared by the total-variation distance, 0..1)
    event_mix            [4] share of each event type
    first_type           [4] type of each session's first event
    transitions          [16] consecutive (type, next type) pairs inside sessions
    hour                 [24] local hour of day of the events
    new_item_by_type     [4, 2] for each type, first touch vs revisit of the item,
                         weighted by the type's share
    category_popularity  [101] shares of the 100 most frequent categories, by rank,
                         then the rest

A session ends where a user's next event is more than `session_gap` seconds later.
`compare` puts the distances next to `TOLERANCES`, the bounds that a simulator fitted
on the real table must meet (tests/test_realism.py enforces them on the Taobao slice).
"""

import numpy as np

from seqad.data import events

_HOUR = 3600

SAMPLE_STATISTICS = (
    'within_session_gap', 'between_session_gap', 'session_length', 'events_per_user',
    'sessions_per_user', 'top_category_share', 'distinct_category_share',
    'revisit_distance', 'item_popularity')
DISTRIBUTION_STATISTICS = (
    'event_mix', 'first_type', 'transitions', 'hour', 'new_item_by_type',
    'category_popularity')

# Largest distance at which a fitted simulator counts as reproducing the statistic.
TOLERANCES = {
    'within_session_gap': 0.05,
    'between_session_gap': 0.15,
    'session_length': 0.05,
    'events_per_user': 0.10,
    'sessions_per_user': 0.10,
    'top_category_share': 0.15,
    'distinct_category_share': 0.15,
    'revisit_distance': 0.15,
    'item_popularity': 0.05,
    'event_mix': 0.02,
    'first_type': 0.03,
    'transitions': 0.03,
    'hour': 0.05,
    'new_item_by_type': 0.03,
    'category_popularity': 0.15,
}


def session_breaks(table: events.EventTable, session_gap: int) -> np.ndarray:
  """[events] bool, True where an event starts a new session of its user."""
  first = np.ones(len(table), dtype=bool)
  first[1:] = ((table.user[1:] != table.user[:-1]) |
               (np.diff(table.timestamp) > session_gap))
  return first


def first_touches(table: events.EventTable) -> np.ndarray:
  """[events] bool, True where a user touches an item for the first time."""
  order = np.lexsort((np.arange(len(table)), table.item, table.user))
  new = np.ones(len(table), dtype=bool)
  new[1:] = ((table.user[order][1:] != table.user[order][:-1]) |
             (table.item[order][1:] != table.item[order][:-1]))
  first = np.empty(len(table), dtype=bool)
  first[order] = new
  return first


def revisit_distances(table: events.EventTable) -> np.ndarray:
  """[revisits] events between each revisit and the user's previous touch of its item."""
  order = np.lexsort((np.arange(len(table)), table.item, table.user))
  same = ((table.user[order][1:] == table.user[order][:-1]) &
          (table.item[order][1:] == table.item[order][:-1]))
  return np.diff(order)[same]


def _per_user_categories(table):
  """Per user: share of events in the top category, distinct categories / events."""
  _, user = np.unique(table.user, return_inverse=True)
  _, category = np.unique(table.category, return_inverse=True)
  pairs, counts = np.unique(user.astype(np.int64) * (category.max() + 1) + category,
                            return_counts=True)
  pair_user = pairs // (category.max() + 1)
  events_per_user = np.bincount(user)
  top = np.zeros(len(events_per_user))
  np.maximum.at(top, pair_user, counts)
  distinct = np.bincount(pair_user, minlength=len(events_per_user))
  return top / events_per_user, distinct / events_per_user


def describe(table: events.EventTable, *, session_gap: int = 1800,
             utc_offset_hours: int = 8) -> dict[str, np.ndarray]:
  """The statistics of the module docstring, name -> array."""
  if len(table) < 2:
    raise ValueError('describe needs a table with at least two events.')
  if not table.is_sorted():
    table = table.sort()
  starts = session_breaks(table, session_gap)
  same_user = np.append(False, table.user[1:] == table.user[:-1])
  gaps = np.append(0, np.diff(table.timestamp))
  session = np.cumsum(starts) - 1
  _, user_index = np.unique(table.user, return_inverse=True)
  top_share, distinct_share = _per_user_categories(table)

  inside = ~starts
  pair = table.event_type[:-1].astype(np.int64) * 4 + table.event_type[1:]
  transitions = np.bincount(pair[inside[1:]], minlength=16)
  first = first_touches(table)
  new_item = np.stack([np.bincount(table.event_type[first], minlength=4),
                       np.bincount(table.event_type[~first], minlength=4)], axis=1)
  category_counts = np.sort(np.unique(table.category, return_counts=True)[1])[::-1]
  popularity = np.append(category_counts[:100], category_counts[100:].sum())
  item_users = np.unique(np.stack([table.item, table.user]), axis=1)[0]
  local_hour = (table.timestamp // _HOUR + utc_offset_hours) % 24
  return {
      'within_session_gap': gaps[inside],
      'between_session_gap': gaps[starts & same_user],
      'session_length': np.bincount(session),
      'events_per_user': np.bincount(user_index),
      'sessions_per_user': np.bincount(user_index[starts]),
      'top_category_share': top_share,
      'distinct_category_share': distinct_share,
      'revisit_distance': revisit_distances(table),
      'item_popularity': np.unique(item_users, return_counts=True)[1],
      'event_mix': _normalise(np.bincount(table.event_type, minlength=4)),
      'first_type': _normalise(np.bincount(table.event_type[starts], minlength=4)),
      'transitions': _normalise(transitions),
      'hour': _normalise(np.bincount(local_hour, minlength=24)),
      'new_item_by_type': _normalise(new_item.ravel()),
      'category_popularity': _normalise(popularity),
  }


def _normalise(counts):
  counts = np.asarray(counts, dtype=np.float64)
  return counts / max(counts.sum(), 1.0)


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
  """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the ECDFs."""
  a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
  if not len(a) or not len(b):
    raise ValueError('ks_distance needs two non-empty samples.')
  points = np.concatenate([a, b])
  cdf_a = np.searchsorted(a, points, side='right') / len(a)
  cdf_b = np.searchsorted(b, points, side='right') / len(b)
  return float(np.max(np.abs(cdf_a - cdf_b)))


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
  """Total variation between two distributions over the same support (0..1)."""
  p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
  if p.shape != q.shape:
    raise ValueError(f'tv_distance needs equal shapes, got {p.shape} and {q.shape}.')
  return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def compare(real: dict, generated: dict) -> list[dict]:
  """One row per statistic: its measure, distance, tolerance and whether it holds."""
  rows = []
  for name in SAMPLE_STATISTICS + DISTRIBUTION_STATISTICS:
    if name in SAMPLE_STATISTICS:
      measure, value = 'ks', ks_distance(real[name], generated[name])
    else:
      measure, value = 'tv', tv_distance(real[name], generated[name])
    rows.append({'statistic': name, 'measure': measure, 'distance': round(value, 4),
                 'tolerance': TOLERANCES[name], 'ok': value <= TOLERANCES[name]})
  return rows


def summary(stats: dict) -> dict:
  """A few readable numbers of `describe`'s output, for the report."""
  return {
      'median_within_session_gap_s': float(np.median(stats['within_session_gap'])),
      'median_between_session_gap_h': float(
          np.median(stats['between_session_gap']) / _HOUR),
      'mean_session_length': float(np.mean(stats['session_length'])),
      'mean_events_per_user': float(np.mean(stats['events_per_user'])),
      'median_events_per_user': float(np.median(stats['events_per_user'])),
      'mean_sessions_per_user': float(np.mean(stats['sessions_per_user'])),
      'median_top_category_share': float(np.median(stats['top_category_share'])),
      'event_mix': [round(float(v), 4) for v in stats['event_mix']],
  }


def markdown(rows: list[dict], real_summary: dict, generated_summary: dict) -> str:
  """The comparison as a Markdown report."""
  lines = ['| statistic | measure | distance | tolerance | within |',
           '|---|---|---|---|---|']
  for row in rows:
    lines.append(f"| {row['statistic']} | {row['measure']} | {row['distance']:.4f} | "
                 f"{row['tolerance']:.2f} | {'yes' if row['ok'] else 'NO'} |")
  lines += ['', '| summary | real | generated |', '|---|---|---|']
  for key in real_summary:
    lines.append(f'| {key} | {_fmt(real_summary[key])} | {_fmt(generated_summary[key])} |')
  return '\n'.join(lines) + '\n'


def _fmt(value):
  if isinstance(value, list):
    return ', '.join(f'{v:.3f}' for v in value)
  return f'{value:.3f}'
