"""Cuts each user's events into fixed-length token windows for sequence models.

Every event becomes one token per field of `FIELDS`:

  event_type  index into `events.EVENT_TYPES`
  category    1 + rank of the raw category among the vocabulary's ids, 0 if unseen
  gap         0 for the user's first event, else 1 + floor(log2(1 + seconds since the
              user's previous event)), clipped to the last bucket
  hour        local hour of day, 0..23
  item_relation  how the event relates to the user's history with its item:
              `NEW_ITEM` (first time the user touches it), `SAME_ITEM` (the item
              of the user's previous event) or `SEEN_ITEM` (touched earlier); the
              last two become `SAME_ITEM_REPEATED` / `SEEN_ITEM_REPEATED` when the
              user already did this very event type on the item (e.g. buys it again)

A user's events, in time order, are cut into consecutive chunks of `length` events
starting at the first one; the last chunk is padded at the end. Windows never mix users.
"""

import dataclasses

from absl import logging
import numpy as np

from seqad.data import events

FIELDS = ('event_type', 'category', 'gap', 'hour', 'item_relation')
NEW_ITEM, SAME_ITEM, SEEN_ITEM, SAME_ITEM_REPEATED, SEEN_ITEM_REPEATED = range(5)

# Window label for windows with some, but too few, injected events to call them
# anomalous or normal; evaluation leaves them out.
AMBIGUOUS = -1


def split_users(users: np.ndarray, fractions: tuple[float, float, float],
                seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Splits distinct users into disjoint train / validation / test sets.

  Args:
    users: [users] raw ids; repeats are ignored and their order does not matter.
    fractions: the share of users in each split; non-negative, summing to 1.
    seed: the permutation seed; the same users and seed give the same split.

  Returns:
    Three sorted [split users] int64 arrays that together hold every user once. Each
    split with a positive fraction holds at least one user when there are enough.
  """
  fractions = np.asarray(fractions, dtype=np.float64)
  if fractions.shape != (3,) or np.any(fractions < 0) or abs(fractions.sum() - 1) > 1e-6:
    raise ValueError(f'fractions must be 3 non-negative numbers summing to 1, '
                     f'got {tuple(fractions)}.')
  users = np.unique(np.asarray(users, dtype=np.int64))

  # Largest-remainder rounding keeps the sizes summing to the number of users.
  exact = fractions * len(users)
  sizes = np.floor(exact).astype(np.int64)
  by_remainder = np.argsort(-(exact - sizes), kind='stable')
  sizes[by_remainder[:len(users) - sizes.sum()]] += 1

  if len(users) >= np.count_nonzero(fractions):
    for split in np.flatnonzero((fractions > 0) & (sizes == 0)):
      sizes[np.argmax(sizes)] -= 1
      sizes[split] += 1

  shuffled = np.random.default_rng(seed).permutation(users)
  train, val, test = np.split(shuffled, np.cumsum(sizes)[:2])
  return np.sort(train), np.sort(val), np.sort(test)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """How raw event fields map to tokens.

  Attributes:
    categories: [kept categories] sorted int64 raw category ids with a token.
    num_gap_buckets: number of gap tokens, the 'start' token 0 included.
    utc_offset_hours: offset of the local time used for the hour token.
  """

  categories: np.ndarray
  num_gap_buckets: int = 16
  utc_offset_hours: int = 8

  def __post_init__(self):
    categories = np.asarray(self.categories, dtype=np.int64)
    if categories.ndim != 1 or np.any(np.diff(categories) <= 0):
      raise ValueError('Vocabulary.categories must be a 1-D array of ascending ids.')
    if self.num_gap_buckets < 2:
      raise ValueError(f'num_gap_buckets must be >= 2, got {self.num_gap_buckets}.')
    object.__setattr__(self, 'categories', categories)

  def sizes(self) -> dict[str, int]:
    """Field -> number of token values."""
    return {
        'event_type': len(events.EVENT_TYPES),
        'category': len(self.categories) + 1,
        'gap': self.num_gap_buckets,
        'hour': 24,
        'item_relation': 5,
    }

  def to_dict(self) -> dict:
    return {
        'categories': self.categories.tolist(),
        'num_gap_buckets': int(self.num_gap_buckets),
        'utc_offset_hours': int(self.utc_offset_hours),
    }

  @classmethod
  def from_dict(cls, data: dict) -> 'Vocabulary':
    return cls(categories=np.asarray(data['categories'], dtype=np.int64),
               num_gap_buckets=int(data['num_gap_buckets']),
               utc_offset_hours=int(data['utc_offset_hours']))

  def category_bucket(self, raw: np.ndarray) -> np.ndarray:
    """Maps raw category ids to [same shape] int32 tokens; 0 for unseen ids."""
    raw = np.asarray(raw, dtype=np.int64)
    index = np.searchsorted(self.categories, raw)
    found = index < len(self.categories)
    found[found] = self.categories[index[found]] == raw[found]
    return np.where(found, index + 1, 0).astype(np.int32)


def fit_vocabulary(table: events.EventTable, *, max_categories: int, min_count: int = 1,
                   num_gap_buckets: int = 16, utc_offset_hours: int = 8) -> Vocabulary:
  """Keeps the `max_categories` most frequent categories of `table`.

  Pass the training users' table only, so that validation and test categories are
  unseen exactly when they would be unseen in deployment. Categories seen fewer than
  `min_count` times are left out; equal counts are ranked by ascending id.
  """
  if max_categories < 0 or min_count < 1:
    raise ValueError(f'Need max_categories >= 0 and min_count >= 1, got '
                     f'{max_categories} and {min_count}.')
  ids, counts = np.unique(table.category, return_counts=True)
  ids, counts = ids[counts >= min_count], counts[counts >= min_count]
  most_frequent = np.lexsort((ids, -counts))[:max_categories]
  vocab = Vocabulary(categories=np.sort(ids[most_frequent]),
                     num_gap_buckets=num_gap_buckets, utc_offset_hours=utc_offset_hours)
  logging.info('Vocabulary: %d of %d categories kept (min_count %d).',
               len(vocab.categories), len(np.unique(table.category)), min_count)
  return vocab


def encode_events(table: events.EventTable, vocab: Vocabulary) -> dict[str, np.ndarray]:
  """Field -> [events] int32 tokens of a table sorted by (user, timestamp)."""
  same_user = np.zeros(len(table), dtype=bool)
  same_user[1:] = table.user[1:] == table.user[:-1]
  gap_seconds = np.zeros(len(table), dtype=np.int64)
  gap_seconds[1:] = table.timestamp[1:] - table.timestamp[:-1]

  # frexp is exact, unlike log2: 1 + gap = mantissa * 2**exponent with the
  # mantissa in [0.5, 1), so floor(log2(1 + gap)) = exponent - 1.
  _, exponent = np.frexp(1.0 + np.maximum(gap_seconds, 0))
  gap = np.minimum(exponent, vocab.num_gap_buckets - 1)
  gap = np.where(same_user, gap, 0)

  local = table.timestamp + vocab.utc_offset_hours * 3600
  return {
      'item_relation': item_relation(table, same_user),
      'event_type': table.event_type.astype(np.int32),
      'category': vocab.category_bucket(table.category),
      'gap': gap.astype(np.int32),
      'hour': ((local // 3600) % 24).astype(np.int32),
  }


def _first_occurrences(keys: tuple[np.ndarray, ...]) -> np.ndarray:
  """[events] bool: True where the row's key tuple appears for the first time.

  Rows are taken in table order, which is time order within each user.
  """
  order = np.lexsort((np.arange(len(keys[0])),) + keys[::-1])
  new_group = np.ones(len(order), dtype=bool)
  new_group[1:] = np.any([key[order][1:] != key[order][:-1] for key in keys], axis=0)
  first = np.empty(len(order), dtype=bool)
  first[order] = new_group
  return first


def item_relation(table: events.EventTable, same_user: np.ndarray) -> np.ndarray:
  """[events] int32 relation of each event to its user's item history.

  The table must be sorted by (user, timestamp); see the module docstring for
  the five values.
  """
  first_touch = _first_occurrences((table.user, table.item))
  first_action = _first_occurrences((table.user, table.item, table.event_type))
  same_item = np.zeros(len(table), dtype=bool)
  same_item[1:] = same_user[1:] & (table.item[1:] == table.item[:-1])
  relation = np.where(same_item, SAME_ITEM, SEEN_ITEM)
  relation = np.where(first_action, relation, relation + (SAME_ITEM_REPEATED - SAME_ITEM))
  return np.where(first_touch, NEW_ITEM, relation).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Windows:
  """Fixed-length windows of events.

  Attributes:
    tokens: field of `FIELDS` -> [windows, time] int32 tokens, 0 at padding.
    mask: [windows, time] bool, True at real events (always a prefix of the window).
    event_kind: [windows, time] int8 anomaly kind of each event, 0 at padding.
    kind: [windows] int8 window label: an anomaly kind, or `AMBIGUOUS`.
    user_index: [windows] int32 dense index (0..users-1) of the window's user among
      the users of the table it came from, in ascending raw id order.
  """

  tokens: dict[str, np.ndarray]
  mask: np.ndarray
  event_kind: np.ndarray
  kind: np.ndarray
  user_index: np.ndarray

  def __len__(self) -> int:
    return len(self.kind)

  @property
  def length(self) -> int:
    return self.mask.shape[1]

  def take(self, index: np.ndarray) -> 'Windows':
    """Windows at `index` (integer positions or a boolean mask), in that order."""
    return Windows(
        tokens={field: values[index] for field, values in self.tokens.items()},
        mask=self.mask[index], event_kind=self.event_kind[index],
        kind=self.kind[index], user_index=self.user_index[index])

  def drop_ambiguous(self) -> 'Windows':
    return self.take(self.kind != AMBIGUOUS)

  def counts(self) -> dict[str, int]:
    """Kind name (and 'ambiguous') -> number of windows."""
    counts = {name: int(np.count_nonzero(self.kind == index))
              for index, name in enumerate(events.ANOMALY_KINDS)}
    counts['ambiguous'] = int(np.count_nonzero(self.kind == AMBIGUOUS))
    return counts


def _window_labels(window: np.ndarray, kind: np.ndarray, num_windows: int,
                   label_min_fraction: float) -> np.ndarray:
  """[windows] int8 labels from the [events] window index and kind of each event."""
  num_kinds = len(events.ANOMALY_KINDS)
  per_kind = np.bincount(window * num_kinds + kind, minlength=num_windows * num_kinds)
  per_kind = per_kind.reshape(num_windows, num_kinds)
  real = per_kind.sum(axis=1)
  injected = real - per_kind[:, events.NORMAL]

  # argmax takes the lowest kind index among equally frequent kinds.
  most_frequent = 1 + np.argmax(per_kind[:, 1:], axis=1)
  fraction = injected / np.maximum(real, 1)
  labels = np.where(fraction >= label_min_fraction, most_frequent, AMBIGUOUS)
  return np.where(injected == 0, events.NORMAL, labels).astype(np.int8)


def make_windows(table: events.EventTable, vocab: Vocabulary, *, length: int,
                 min_events: int = 1, label_min_fraction: float = 0.25) -> Windows:
  """Cuts every user's events into windows of `length` events.

  Args:
    table: events sorted by (user, timestamp).
    vocab: the token mapping.
    length: events per window.
    min_events: windows with fewer real events (only a user's last one can have
      fewer than `length`) are dropped.
    label_min_fraction: a window whose share of injected events reaches this gets the
      most frequent injected kind as label; a smaller non-zero share gets `AMBIGUOUS`.

  Returns:
    The windows, grouped by user in ascending raw id order, each user's in time order.
  """
  if not table.is_sorted():
    raise ValueError('make_windows needs a table sorted by (user, timestamp); '
                     'call table.sort() first.')
  if length < 1 or not 1 <= min_events <= length:
    raise ValueError(f'Need length >= 1 and 1 <= min_events <= length, got '
                     f'length={length}, min_events={min_events}.')

  # Rows of a user are contiguous, so an event's position within its user is its
  # row minus the user's first row.
  users, first_row, user_of_event, events_per_user = np.unique(
      table.user, return_index=True, return_inverse=True, return_counts=True)
  position = np.arange(len(table)) - first_row[user_of_event]
  windows_per_user = -(-events_per_user // length)
  first_window = np.cumsum(windows_per_user) - windows_per_user
  window = first_window[user_of_event] + position // length
  slot = position % length
  num_windows = int(windows_per_user.sum())

  mask = np.zeros((num_windows, length), dtype=bool)
  mask[window, slot] = True
  event_kind = np.zeros((num_windows, length), dtype=np.int8)
  event_kind[window, slot] = table.kind
  tokens = {}
  for field, values in encode_events(table, vocab).items():
    tokens[field] = np.zeros((num_windows, length), dtype=np.int32)
    tokens[field][window, slot] = values

  window_user = np.repeat(np.arange(len(users), dtype=np.int32), windows_per_user)
  labels = _window_labels(window, table.kind.astype(np.int64), num_windows,
                          label_min_fraction)
  result = Windows(tokens=tokens, mask=mask, event_kind=event_kind, kind=labels,
                   user_index=window_user)

  real_events = mask.sum(axis=1)
  short = real_events < min_events
  if np.any(short):
    result = result.take(~short)
  padding = 1 - mask[~short].sum() / max(mask[~short].size, 1)
  logging.info('Windows of %d events: %d windows from %d users, %d short windows '
               'dropped (%d events), padding %.1f%%.', length, len(result), len(users),
               np.count_nonzero(short), real_events[short].sum(), 100 * padding)
  logging.info('Windows per kind: %s', result.counts())
  return result
