"""Labelled anomaly injectors that work on any `EventTable`, simulated or real.

Each injector writes one anomalous *segment* of `segment_length` events into the
timeline of each of its victims. Injected rows carry the victim's user id and the
kind's index in the `kind` column, which is therefore the per-event label; genuine
rows are never changed, and the result is re-sorted by (user, timestamp). Items and
categories are drawn from the table's own universe, so the segments use ids that
real traffic uses too.

click_bot
  Imitates scripted traffic that inflates a listing's page views, or a scraper
  polling a few product pages. It starts at a random moment of the victim's active
  period and fires page views only, at near-constant gaps of a few seconds with a
  second of jitter, on one to three items of one category. Betrayed by its metronome
  pace, the absence of any cart, fav or buy, and the tiny item set.

order_brushing
  Imitates paid fake orders ("brushing") that a shop buys to push its sales count
  and search ranking. One "shop" (a few items of one category) gets bought again and
  again in short view->buy cycles, sometimes view->cart->buy, a few minutes apart,
  with no browsing in between. Betrayed by a purchase rate far above any genuine
  shopper's and by repeated buys of the same few items.

account_takeover
  Imitates a stolen account being spent by an attacker. The segment looks like an
  ordinary shopping session by its event-type counts (mostly views, then a few carts
  and buys, about the normal view fraction), so counting event types does not give
  it away. What does: the attacker browses categories the victim never touched
  (drawn uniformly from the table's categories, not by popularity), at night China
  local time, at a faster pace than a genuine shopper, and ends with a checkout rush
  that carts and then buys items the victim never viewed. Placement: the segment
  starts at a night hour of a day in the later half of the victim's active period,
  so genuine history precedes it; genuine events may follow it (the owner returns).
"""

import dataclasses

from absl import logging
import numpy as np

from seqad.data import events

_HOUR = 3600
_DAY = 24 * _HOUR

KINDS = events.ANOMALY_KINDS[1:]


@dataclasses.dataclass(frozen=True)
class AnomalyParams:
  """What to inject and how; every field maps onto a config entry."""

  kinds: tuple[str, ...] = KINDS  # anomaly kinds to inject, names from ANOMALY_KINDS
  user_fraction: float = 0.06  # per kind, fraction of candidate users made victims
  segment_length: int = 48  # injected events per victim
  utc_offset_hours: int = 8  # local time of the data (China) for night hours

  bot_gap_seconds: float = 1.5  # gap between consecutive bot views
  bot_jitter_seconds: float = 0.5  # bot gaps are uniform in gap +- jitter, rounded
  bot_max_items: int = 3  # the bot views 1..bot_max_items items of one category

  brushing_items: int = 3  # items of the brushed shop, all of one category
  brushing_cycle_seconds: float = 120.0  # mean spacing of cycles, uniform +-50%
  brushing_step_seconds: float = 5.0  # median gap inside a view->(cart->)buy cycle
  brushing_cart_prob: float = 0.3  # a cycle puts the item in the cart before buying

  takeover_categories: int = 3  # never-touched categories the attacker browses
  takeover_purchases: int = 5  # items carted then bought at the end of the segment
  takeover_switch_prob: float = 0.15  # per view, the attacker moves to a new category
  takeover_gap_seconds: float = 3.0  # median gap between attacker events
  takeover_gap_sigma: float = 0.6  # log-space spread of attacker gaps
  takeover_first_hour: int = 1  # the segment starts in local hours [first, last)
  takeover_last_hour: int = 5

  def __post_init__(self):
    # Configs may hand over a list; keep the frozen dataclass hashable.
    object.__setattr__(self, 'kinds', tuple(self.kinds))
    for name in self.kinds:
      if name not in KINDS:
        raise ValueError(f'Unknown anomaly kind {name!r}; known: {KINDS}.')
    if len(set(self.kinds)) != len(self.kinds):
      raise ValueError(f'AnomalyParams.kinds repeats a kind: {self.kinds}.')
    if self.user_fraction < 0 or self.user_fraction * len(self.kinds) > 1:
      raise ValueError(
          f'AnomalyParams.user_fraction={self.user_fraction} must be >= 0 and at most '
          f'1 / {len(self.kinds)} so that victims of different kinds stay disjoint.')
    if self.segment_length < 2 * self.takeover_purchases + 2:
      raise ValueError('AnomalyParams.segment_length must exceed 2 * takeover_purchases '
                       '+ 1, leaving the attacker some views.')
    if min(self.bot_max_items, self.brushing_items, self.takeover_categories) < 1:
      raise ValueError('AnomalyParams item and category counts must be >= 1.')
    if not 0 <= self.takeover_first_hour < self.takeover_last_hour <= 24:
      raise ValueError('AnomalyParams needs 0 <= takeover_first_hour < '
                       'takeover_last_hour <= 24.')


@dataclasses.dataclass(frozen=True)
class Catalog:
  """The distinct items of a table grouped by category.

  Attributes:
    items: [items] distinct item ids, grouped by category, ascending inside a group.
    categories: [categories] distinct category ids, ascending.
    starts: [categories + 1] offsets of each category's items in `items`.
  """

  items: np.ndarray
  categories: np.ndarray
  starts: np.ndarray

  @classmethod
  def from_table(cls, table: events.EventTable) -> 'Catalog':
    if not len(table):
      raise ValueError('Cannot build a catalogue of an empty EventTable.')
    # An item seen under several categories keeps the first one in table order.
    items, first = np.unique(table.item, return_index=True)
    item_category = table.category[first]
    order = np.lexsort((items, item_category))
    categories, starts = np.unique(item_category[order], return_index=True)
    return cls(items[order], categories, np.append(starts, len(items)))

  def items_of(self, position: int) -> np.ndarray:
    """The items of the category at `position` in `categories`."""
    return self.items[self.starts[position]:self.starts[position + 1]]


def _user_rows(table: events.EventTable, user: int) -> slice:
  lo, hi = np.searchsorted(table.user, [user, user + 1])
  if lo == hi:
    raise ValueError(f'User {user} has no events in the table.')
  return slice(int(lo), int(hi))


def _segment(user, timestamp, event_type, item, category, kind) -> events.EventTable:
  return events.EventTable.from_columns(
      user=np.full(len(timestamp), user), timestamp=timestamp, event_type=event_type,
      item=item, category=category, kind=np.full(len(timestamp), events.kind_index(kind)))


def _check(table, catalog):
  if not table.is_sorted():
    raise ValueError('Anomaly injection needs a table sorted by (user, timestamp).')
  return Catalog.from_table(table) if catalog is None else catalog


def click_bot_segments(table: events.EventTable, victims: np.ndarray,
                       rng: np.random.Generator, params: AnomalyParams,
                       catalog: Catalog | None = None) -> events.EventTable:
  """One click-bot segment per victim; returns only the new rows, unsorted."""
  catalog = _check(table, catalog)
  length = params.segment_length
  segments = []
  for user in victims:
    ts = table.timestamp[_user_rows(table, user)]
    start = rng.integers(ts[0], ts[-1] + 1)

    # Any category, not a popular one: bots inflate obscure listings as well.
    position = rng.integers(len(catalog.categories))
    pool = catalog.items_of(position)
    count = min(int(rng.integers(1, params.bot_max_items + 1)), len(pool))
    item = rng.choice(rng.choice(pool, count, replace=False), length)

    jitter = params.bot_jitter_seconds * rng.uniform(-1.0, 1.0, length - 1)
    gaps = np.maximum(1, np.rint(params.bot_gap_seconds + jitter)).astype(np.int64)
    timestamp = start + np.concatenate([[0], np.cumsum(gaps)])
    segments.append(_segment(user, timestamp, np.full(length, events.VIEW), item,
                             np.full(length, catalog.categories[position]), 'click_bot'))
  return events.EventTable.concatenate(segments)


def order_brushing_segments(table: events.EventTable, victims: np.ndarray,
                            rng: np.random.Generator, params: AnomalyParams,
                            catalog: Catalog | None = None) -> events.EventTable:
  """One order-brushing segment per victim; returns only the new rows, unsorted."""
  catalog = _check(table, catalog)
  length = params.segment_length
  sizes = np.diff(catalog.starts)
  # Prefer categories that can stock a full shop; tiny tables may have none.
  shops = np.flatnonzero(sizes >= params.brushing_items)
  if not len(shops):
    shops = np.arange(len(catalog.categories))
  segments = []
  for user in victims:
    ts = table.timestamp[_user_rows(table, user)]
    start = rng.integers(ts[0], ts[-1] + 1)
    position = rng.choice(shops)
    pool = catalog.items_of(position)
    shop = rng.choice(pool, min(params.brushing_items, len(pool)), replace=False)

    # Enough cycles for `length` events: a view, maybe a cart, then a buy.
    happens = np.ones((length, 3), bool)
    happens[:, 1] = rng.random(length) < params.brushing_cart_prob
    flat = np.flatnonzero(happens.ravel())[:length]
    cycle = flat // 3
    event_type = np.array([events.VIEW, events.CART, events.BUY])[flat % 3]

    # Steps stay well inside a cycle, so cycles never overlap.
    spacing = params.brushing_cycle_seconds * rng.uniform(0.5, 1.5, length)
    cycle_start = np.concatenate([[0.0], np.cumsum(spacing[:-1])])
    steps = rng.lognormal(np.log(params.brushing_step_seconds), 0.5, (length, 3))
    steps = np.minimum(steps, 0.2 * params.brushing_cycle_seconds)
    steps[:, 0] = 0.0
    step_offset = np.cumsum(steps * happens, axis=1).ravel()[flat]
    timestamp = start + np.rint(cycle_start[cycle] + step_offset).astype(np.int64)
    segments.append(_segment(user, timestamp, event_type, rng.choice(shop, length)[cycle],
                             np.full(length, catalog.categories[position]),
                             'order_brushing'))
  return events.EventTable.concatenate(segments)


def _takeover_start(ts: np.ndarray, rng: np.random.Generator, params: AnomalyParams):
  """A night moment on a local day in the later half of a victim's history."""
  offset = params.utc_offset_hours * _HOUR
  moment = rng.integers(ts[len(ts) // 2], ts[-1] + 1)
  midnight = (moment + offset) // _DAY * _DAY - offset
  start = midnight + rng.integers(params.takeover_first_hour * _HOUR,
                                  params.takeover_last_hour * _HOUR)
  # Only a history shorter than a day can begin after that night; take the next one.
  return start + _DAY if start < ts[0] else start


def _unseen_items(catalog, positions, excluded, count, fresh_item, fresh_category, rng):
  """`count` distinct items of the categories at `positions`, none in `excluded`.

  Returns:
    ([count] item ids, [count] their category ids).
  """
  sizes = np.diff(catalog.starts)[positions]
  pool = np.concatenate([catalog.items_of(p) for p in positions] +
                        [np.zeros(0, np.int64)])
  pool_category = np.repeat(catalog.categories[positions], sizes)
  keep = ~np.isin(pool, excluded)
  picked = rng.choice(np.flatnonzero(keep), min(count, int(keep.sum())), replace=False)

  # A catalogue too small to supply them gets items that no one has seen.
  missing = count - len(picked)
  return (np.concatenate([pool[picked], fresh_item + np.arange(missing)]),
          np.concatenate([pool_category[picked], np.full(missing, fresh_category)]))


def account_takeover_segments(table: events.EventTable, victims: np.ndarray,
                              rng: np.random.Generator, params: AnomalyParams,
                              catalog: Catalog | None = None) -> events.EventTable:
  """One account-takeover segment per victim; returns only the new rows, unsorted."""
  catalog = _check(table, catalog)
  fresh_item = int(catalog.items.max()) + 1
  fresh_category = int(catalog.categories.max()) + 1
  num_views = params.segment_length - 2 * params.takeover_purchases
  segments = []
  for user in victims:
    rows = _user_rows(table, user)
    ts = table.timestamp[rows]
    untouched = np.flatnonzero(~np.isin(catalog.categories, table.category[rows]))
    chosen = rng.choice(untouched, min(params.takeover_categories, len(untouched)),
                        replace=False)

    # Browse: dwell on one chosen category, then move on to the next one.
    switch = rng.random(num_views) < params.takeover_switch_prob
    dwell = (np.cumsum(switch) - switch[0]) % max(len(chosen), 1)
    if len(chosen):
      view_category = catalog.categories[chosen][dwell]
      lo, size = catalog.starts[chosen][dwell], np.diff(catalog.starts)[chosen][dwell]
      view_item = catalog.items[lo + (rng.random(num_views) * size).astype(np.int64)]
    else:
      logging.warning('Takeover victim %d touched every category; using new ids.', user)
      view_category = np.full(num_views, fresh_category)
      view_item = fresh_item + params.takeover_purchases + rng.integers(
          num_views, size=num_views)

    # Checkout rush: cart every loot item, then buy them, none seen by the victim.
    loot, loot_category = _unseen_items(
        catalog, chosen, np.concatenate([table.item[rows], view_item]),
        params.takeover_purchases, fresh_item, fresh_category, rng)
    event_type = np.concatenate([np.full(num_views, events.VIEW),
                                 np.full(len(loot), events.CART),
                                 np.full(len(loot), events.BUY)])

    gaps = rng.lognormal(np.log(params.takeover_gap_seconds), params.takeover_gap_sigma,
                         params.segment_length - 1)
    timestamp = _takeover_start(ts, rng, params) + np.concatenate(
        [[0], np.cumsum(np.maximum(1, np.rint(gaps)).astype(np.int64))])
    segments.append(_segment(
        user, timestamp, event_type, np.concatenate([view_item, loot, loot]),
        np.concatenate([view_category, loot_category, loot_category]),
        'account_takeover'))
  return events.EventTable.concatenate(segments)


# Kind name -> function making that kind's segments for a set of victims.
SEGMENT_MAKERS = {
    'click_bot': click_bot_segments,
    'order_brushing': order_brushing_segments,
    'account_takeover': account_takeover_segments,
}


def victim_counts(num_candidates: int, params: AnomalyParams) -> list[int]:
  """Victims per kind in `params.kinds`: round(user_fraction * candidates), at least
  one per kind while disjoint candidates last."""
  counts = []
  for _ in params.kinds:
    count = round(params.user_fraction * num_candidates)
    if params.user_fraction > 0:
      count = max(count, 1)
    counts.append(min(count, num_candidates - sum(counts)))
  return counts


def inject_anomalies(table: events.EventTable, candidate_users: np.ndarray,
                     params: AnomalyParams, seed: int) -> events.EventTable:
  """Injects every kind of `params.kinds` into disjoint victims among the candidates.

  Args:
    table: any event table; its rows come back unchanged.
    candidate_users: [users] ids of users that may become victims; all must have
      events in `table`.
    params: what to inject.
    seed: seeds `np.random.default_rng`; equal inputs and seed give identical output.

  Returns:
    The genuine rows plus `segment_length` injected rows per victim, sorted by
    (user, timestamp), labelled in the `kind` column.
  """
  rng = np.random.default_rng(seed)
  if not table.is_sorted():
    table = table.sort()
  candidates = np.unique(np.asarray(candidate_users, dtype=np.int64))
  if params.user_fraction > 0 and params.kinds and not len(candidates):
    raise ValueError('inject_anomalies got no candidate users but user_fraction > 0.')
  # The table is sorted by user, so a binary search finds who has events.
  position = np.minimum(np.searchsorted(table.user, candidates), max(len(table) - 1, 0))
  absent = candidates[table.user[position] != candidates] if len(table) else candidates
  if len(absent):
    raise ValueError(f'{len(absent)} candidate users have no events in the table, '
                     f'e.g. {absent[:5].tolist()}.')
  counts = victim_counts(len(candidates), params)
  if not sum(counts):
    return table

  shuffled = rng.permutation(candidates)
  catalog = Catalog.from_table(table)
  parts = [table]
  taken = 0
  for name, count in zip(params.kinds, counts):
    if not count and params.user_fraction > 0:
      logging.warning('No candidate users left for %s; injecting none.', name)
    victims = np.sort(shuffled[taken:taken + count])
    taken += count
    segments = SEGMENT_MAKERS[name](table, victims, rng, params, catalog=catalog)
    logging.info('Injected %s into %d users: %d events.', name, count, len(segments))
    parts.append(segments)
  return events.EventTable.concatenate(parts).sort()
