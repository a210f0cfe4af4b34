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
from seqad.data import sessions

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


ITEM_ENCODINGS = ('none', 'vocab', 'hash')


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """How raw event fields map to tokens.

  Attributes:
    categories: [kept categories] sorted int64 raw category ids with a token.
    num_gap_buckets: number of gap tokens, the 'start' token 0 included.
    utc_offset_hours: offset of the local time used for the hour token.
    num_event_types: event type tokens: the common four plus a source's own types.
    items: [kept items] sorted int64 raw item ids with an 'item' token (1 + rank; 0
      for unseen items), or None.
    item_hash_buckets: with `items` None and this > 0, the 'item' token is
      1 + a hash of the raw id modulo this; 0 disables the 'item' field.
  """

  categories: np.ndarray
  num_gap_buckets: int = 16
  utc_offset_hours: int = 8
  num_event_types: int = len(events.EVENT_TYPES)
  items: np.ndarray | None = None
  item_hash_buckets: int = 0

  def __post_init__(self):
    for name in ('categories', 'items'):
      ids = getattr(self, name)
      if ids is None:
        continue
      ids = np.asarray(ids, dtype=np.int64)
      if ids.ndim != 1 or np.any(np.diff(ids) <= 0):
        raise ValueError(f'Vocabulary.{name} must be a 1-D array of ascending ids.')
      object.__setattr__(self, name, ids)
    if self.num_gap_buckets < 2:
      raise ValueError(f'num_gap_buckets must be >= 2, got {self.num_gap_buckets}.')
    if not len(events.EVENT_TYPES) <= self.num_event_types <= 127:
      raise ValueError(f'num_event_types must be in [4, 127], got {self.num_event_types}.')

  @property
  def has_items(self) -> bool:
    return self.items is not None or self.item_hash_buckets > 0

  def sizes(self) -> dict[str, int]:
    """Field -> number of token values."""
    sizes = {
        'event_type': self.num_event_types,
        'category': len(self.categories) + 1,
        'gap': self.num_gap_buckets,
        'hour': 24,
        'item_relation': 5,
    }
    if self.items is not None:
      sizes['item'] = len(self.items) + 1
    elif self.item_hash_buckets:
      sizes['item'] = self.item_hash_buckets + 1
    return sizes

  def to_dict(self) -> dict:
    return {
        'categories': self.categories.tolist(),
        'num_gap_buckets': int(self.num_gap_buckets),
        'utc_offset_hours': int(self.utc_offset_hours),
        'num_event_types': int(self.num_event_types),
        'items': None if self.items is None else self.items.tolist(),
        'item_hash_buckets': int(self.item_hash_buckets),
    }

  @classmethod
  def from_dict(cls, data: dict) -> 'Vocabulary':
    items = data.get('items')
    return cls(categories=np.asarray(data['categories'], dtype=np.int64),
               num_gap_buckets=int(data['num_gap_buckets']),
               utc_offset_hours=int(data['utc_offset_hours']),
               num_event_types=int(data.get('num_event_types', len(events.EVENT_TYPES))),
               items=None if items is None else np.asarray(items, dtype=np.int64),
               item_hash_buckets=int(data.get('item_hash_buckets', 0)))

  def category_bucket(self, raw: np.ndarray) -> np.ndarray:
    """Maps raw category ids to [same shape] int32 tokens; 0 for unseen ids."""
    return _lookup(self.categories, raw)

  def item_bucket(self, raw: np.ndarray) -> np.ndarray:
    """Maps raw item ids to [same shape] int32 'item' tokens (see the attributes)."""
    if self.items is not None:
      return _lookup(self.items, raw)
    if not self.item_hash_buckets:
      raise ValueError('This vocabulary has no item field.')
    return (1 + _mix64(raw) % np.uint64(self.item_hash_buckets)).astype(np.int32)


def _dense_enough(max_id: int, rows: int) -> bool:
  """Whether a table indexed by id (max_id + 1 entries) is cheap next to `rows`."""
  return max_id < 4 * rows + (1 << 20)


def _lookup(ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
  """1 + rank of each raw id among the sorted `ids`, 0 where absent; int32."""
  raw = np.asarray(raw)
  if len(ids) and ids[0] >= 0 and raw.size > 1000 and _dense_enough(
      int(ids[-1]), raw.size):
    # Small non-negative ids: index a dense table instead of a binary search. Its
    # last entry is 0, for ids above the largest; 'clip' sends those there.
    table = np.zeros(int(ids[-1]) + 2, dtype=np.int32)
    table[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    if ids[0] == 0 and raw.min() < 0:
      raw = np.where(raw < 0, len(table) - 1, raw)  # Not to id 0's token.
    return np.take(table, raw, mode='clip')
  index = np.searchsorted(ids, raw)
  found = index < len(ids)
  found[found] = ids[index[found]] == raw[found]
  return np.where(found, index + 1, 0).astype(np.int32)


def _mix64(raw: np.ndarray) -> np.ndarray:
  """A fixed 64-bit mixing hash (splitmix64's finaliser) of int64 ids, as uint64."""
  value = np.asarray(raw, dtype=np.int64).view(np.uint64)
  with np.errstate(over='ignore'):
    value = value + np.uint64(0x9E3779B97F4A7C15)
    value = (value ^ (value >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    value = (value ^ (value >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return value ^ (value >> np.uint64(31))


def _most_frequent(ids: np.ndarray, max_kept: int, min_count: int
                   ) -> tuple[np.ndarray, int]:
  """The sorted ids seen at least `min_count` times, at most `max_kept` of them.

  Equal counts are ranked by ascending id. Also returns the number of distinct ids.
  """
  if len(ids) and ids.min() >= 0 and _dense_enough(int(ids.max()), len(ids)):
    counts = np.bincount(ids)
    ids = np.flatnonzero(counts)
    counts = counts[ids]
  else:
    ids, counts = np.unique(ids, return_counts=True)
  distinct = len(ids)
  ids, counts = ids[counts >= min_count], counts[counts >= min_count]
  return np.sort(ids[np.lexsort((ids, -counts))[:max_kept]]), distinct


def fit_vocabulary(table: events.EventTable, *, max_categories: int, min_count: int = 1,
                   num_gap_buckets: int = 16, utc_offset_hours: int = 8,
                   num_event_types: int = len(events.EVENT_TYPES),
                   item_encoding: str = 'none', max_items: int = 0,
                   min_item_count: int = 1) -> Vocabulary:
  """Keeps the `max_categories` most frequent categories (and items) of `table`.

  Pass the training split's table only, so that validation and test categories and
  items are unseen exactly when they would be unseen in deployment. Categories seen
  fewer than `min_count` times are left out; equal counts are ranked by ascending id.

  Args:
    item_encoding: 'none' (no item field), 'vocab' (the `max_items` most frequent
      items seen `min_item_count`+ times, others to the out-of-vocabulary token 0)
      or 'hash' (`max_items` hash buckets; nothing is fitted).
  """
  if max_categories < 0 or min_count < 1 or min_item_count < 1:
    raise ValueError(f'Need max_categories >= 0 and min counts >= 1, got '
                     f'{max_categories}, {min_count} and {min_item_count}.')
  if item_encoding not in ITEM_ENCODINGS:
    raise ValueError(f'item_encoding must be one of {ITEM_ENCODINGS}, got '
                     f'{item_encoding!r}.')
  if item_encoding != 'none' and max_items < 1:
    raise ValueError(f'item_encoding {item_encoding!r} needs max_items >= 1.')
  items = None
  if item_encoding == 'vocab':
    items, _ = _most_frequent(table.item, max_items, min_item_count)
  categories, distinct = _most_frequent(table.category, max_categories, min_count)
  vocab = Vocabulary(categories=categories,
                     num_gap_buckets=num_gap_buckets, utc_offset_hours=utc_offset_hours,
                     num_event_types=num_event_types, items=items,
                     item_hash_buckets=max_items if item_encoding == 'hash' else 0)
  logging.info('Vocabulary: %d of %d categories kept (min_count %d)%s.',
               len(vocab.categories), distinct, min_count,
               '' if items is None else f', {len(items)} items')
  return vocab


def _gap_buckets(table: events.EventTable, same_user: np.ndarray,
                 num_buckets: int) -> np.ndarray:
  """[events] int8 log2 gap bucket; 0 at each user's first event.

  1 + floor(log2(1 + gap)) is the bit length of 1 + gap: one plus the number of
  powers 2, 4, 8, ... that do not exceed it, counted in integers (exact and lean).
  """
  rows = len(table)
  gap = np.zeros(rows, dtype=table.timestamp.dtype)
  np.subtract(table.timestamp[1:], table.timestamp[:-1], out=gap[1:])
  gap += 1
  bucket = np.ones(rows, dtype=np.int8)
  largest = int(gap.max()) if rows else 0
  for power in range(1, num_buckets - 1):
    if 2**power > largest:
      break
    bucket += gap >= 2**power
  del gap
  bucket[~same_user] = 0
  return bucket


def _hours(table: events.EventTable, utc_offset_hours: int) -> np.ndarray:
  """[events] int8 local hour of day."""
  # In place on one copy; seconds into the day fit int32, whose division is cheaper.
  seconds = table.timestamp + utc_offset_hours * 3600
  seconds %= 86400
  if seconds.dtype != np.int32:
    seconds = seconds.astype(np.int32)
  seconds //= 3600
  return seconds.astype(np.int8)


def _field_encoders(table: events.EventTable, vocab: Vocabulary, same_user: np.ndarray):
  """Field -> a function computing its [events] tokens (int8 or int32).

  Heaviest first: the item relation needs a sort, so it runs before any window
  field is filled in.
  """
  encoders = {
      'item_relation': lambda: _item_relation(table, same_user),
      'gap': lambda: _gap_buckets(table, same_user, vocab.num_gap_buckets),
      'category': lambda: vocab.category_bucket(table.category),
      'hour': lambda: _hours(table, vocab.utc_offset_hours),
      'event_type': lambda: table.event_type,
  }
  if vocab.has_items:
    encoders['item'] = lambda: vocab.item_bucket(table.item)
  return encoders


def _same_user(table: events.EventTable) -> np.ndarray:
  same_user = np.zeros(len(table), dtype=bool)
  np.equal(table.user[1:], table.user[:-1], out=same_user[1:])
  return same_user


def encode_events(table: events.EventTable, vocab: Vocabulary) -> dict[str, np.ndarray]:
  """Field -> [events] int32 tokens of a table sorted by (user, timestamp)."""
  same_user = _same_user(table)
  return {field: encode().astype(np.int32) for field, encode in
          _field_encoders(table, vocab, same_user).items()}


def item_relation(table: events.EventTable, same_user: np.ndarray) -> np.ndarray:
  """[events] int32 relation of each event to its user's item history.

  The table must be sorted by (user, timestamp); see the module docstring for
  the five values.
  """
  return _item_relation(table, same_user).astype(np.int32)


def _item_relation(table: events.EventTable, same_user: np.ndarray) -> np.ndarray:
  """`item_relation` as int8.

  One stable sort by (user, item, event type) finds both the first touch of each
  (user, item) and the first action of each triple.
  """
  rows = len(table)
  if rows == 0:
    return np.zeros(0, np.int8)
  item_min = int(table.item.min())
  item_span = int(table.item.max()) - item_min + 1
  num_types = int(table.event_type.max()) + 1
  num_users = rows - int(np.count_nonzero(same_user))
  if num_users * item_span * num_types < 2**62:
    # One int64 key per event, built in place: (user, item, type) in mixed radix.
    key = np.cumsum(~same_user, dtype=np.int64)
    key -= 1
    key *= item_span
    key += table.item
    key -= item_min
    key *= num_types
    key += table.event_type
    order = np.argsort(key, kind='stable')
    key[:] = key[order]  # Sorted, in place of the unsorted key.
    new_triple = np.ones(rows, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=new_triple[1:])
    key //= num_types
    new_pair = np.ones(rows, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=new_pair[1:])
    del key
  else:
    user = np.cumsum(~same_user) - 1
    order = np.lexsort((table.event_type, table.item, user))
    sorted_user, sorted_item = user[order], table.item[order]
    new_pair = np.ones(rows, dtype=bool)
    new_pair[1:] = ((sorted_user[1:] != sorted_user[:-1]) |
                    (sorted_item[1:] != sorted_item[:-1]))
    del sorted_user, sorted_item, user
    sorted_type = table.event_type[order]
    new_triple = new_pair.copy()
    new_triple[1:] |= sorted_type[1:] != sorted_type[:-1]
    del sorted_type

  # Stable order: the first row of each run is the earliest event of the run.
  first_action = np.zeros(rows, dtype=bool)
  first_action[order[new_triple]] = True
  del new_triple
  first_touch = np.zeros(rows, dtype=bool)
  first_touch[order[new_pair]] = True
  del order, new_pair

  relation = np.full(rows, SEEN_ITEM, dtype=np.int8)
  same_item = np.zeros(rows, dtype=bool)
  np.equal(table.item[1:], table.item[:-1], out=same_item[1:])
  same_item &= same_user
  relation[same_item] = SAME_ITEM
  del same_item
  first_action = ~first_action
  relation[first_action] += SAME_ITEM_REPEATED - SAME_ITEM
  relation[first_touch] = NEW_ITEM
  return relation


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


def _window_labels(event_kind: np.ndarray, mask: np.ndarray,
                   label_min_fraction: float) -> np.ndarray:
  """[windows] int8 labels from the [windows, time] kinds of the events."""
  num_windows = len(event_kind)
  num_kinds = len(events.ANOMALY_KINDS)
  # Padding has kind 0, so counting kinds above 0 needs no mask.
  per_kind = np.zeros((num_windows, num_kinds), dtype=np.int64)
  for kind in range(1, num_kinds):
    hits = event_kind == kind
    if hits.any():
      per_kind[:, kind] = hits.sum(axis=1)
    del hits
  real = mask.sum(axis=1)
  injected = per_kind.sum(axis=1)

  # argmax takes the lowest kind index among equally frequent kinds.
  most_frequent = 1 + np.argmax(per_kind[:, 1:], axis=1)
  fraction = injected / np.maximum(real, 1)
  labels = np.where(fraction >= label_min_fraction, most_frequent, AMBIGUOUS)
  return np.where(injected == 0, events.NORMAL, labels).astype(np.int8)


def plan_windows(starts: np.ndarray, length: int,
                 stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Where each window of each sequence begins and how many events it holds.

  A sequence of n events gets windows at offsets 0, stride, 2 * stride, ... until one
  reaches its last event: 1 + ceil(max(n - length, 0) / stride) windows, the last of
  them possibly shorter than `length`. Long sequences are cut, never dropped.

  Args:
    starts: [events] bool, True at each sequence's first event.

  Returns:
    first_row: [windows] int64 table row of each window's first event.
    size: [windows] int64 real events in each window.
    sequence: [windows] int64 index of each window's sequence.
  """
  first = np.flatnonzero(starts)
  lengths = np.diff(np.append(first, len(starts)))
  per_sequence = 1 + (np.maximum(lengths - length, 0) + stride - 1) // stride
  sequence = np.repeat(np.arange(len(first)), per_sequence)
  window_in_sequence = np.arange(len(sequence)) - np.repeat(
      np.cumsum(per_sequence) - per_sequence, per_sequence)
  offset = window_in_sequence * stride
  size = np.minimum(length, lengths[sequence] - offset)
  return first[sequence] + offset, size, sequence


def make_windows(table: events.EventTable, vocab: Vocabulary, *, length: int,
                 min_events: int = 1, label_min_fraction: float = 0.25,
                 stride: int | None = None, unit: str = 'user',
                 session_gap_seconds: int = sessions.DEFAULT_GAP_SECONDS) -> Windows:
  """Cuts every sequence (user history or session) into windows of `length` events.

  Args:
    table: events sorted by (user, timestamp).
    vocab: the token mapping.
    length: events per window.
    min_events: windows with fewer real events are dropped; shorter ones are padded.
    label_min_fraction: a window whose share of injected events reaches this gets the
      most frequent injected kind as label; a smaller non-zero share gets `AMBIGUOUS`.
    stride: events between the starts of consecutive windows of a sequence; None or
      `length` gives back-to-back windows, less gives overlapping ones.
    unit: 'user' (a window never mixes users) or 'session' (nor sessions), see
      `seqad.data.sessions`.
    session_gap_seconds: the inactivity gap that ends a session.

  Returns:
    The windows, grouped by user in ascending raw id order, each user's in time order.
  """
  stride = length if stride is None else stride
  if not table.is_sorted():
    raise ValueError('make_windows needs a table sorted by (user, timestamp); '
                     'call table.sort() first.')
  if length < 1 or not 1 <= min_events <= length or not 1 <= stride <= length:
    raise ValueError(f'Need length >= 1, 1 <= min_events <= length and 1 <= stride <= '
                     f'length, got length={length}, min_events={min_events}, '
                     f'stride={stride}.')

  starts = sessions.sequence_starts(table, unit, session_gap_seconds)
  num_sequences = int(np.count_nonzero(starts))
  first_row, size, _ = plan_windows(starts, length, stride)
  del starts
  short = size < min_events
  num_short, dropped_events = int(np.count_nonzero(short)), int(size[short].sum())
  all_sizes = size
  first_row, size = first_row[~short], size[~short]
  num_windows = len(first_row)

  same_user = _same_user(table)
  user_first_row = np.flatnonzero(~same_user)
  window_user = (np.searchsorted(user_first_row, first_row, side='right') - 1).astype(
      np.int32)
  del user_first_row
  mask = np.arange(length)[None, :] < size[:, None]
  if stride == length:
    # Windows are back-to-back runs of rows: in row-major order the mask's real
    # slots meet the kept rows in table order, so a masked assignment places them.
    kept_rows = None if not dropped_events else np.repeat(~short, all_sizes)

    def place(values, dtype):
      out = np.zeros((num_windows, length), dtype=dtype)
      out[mask] = values if kept_rows is None else values[kept_rows]
      return out
  else:
    # Overlapping windows share events: gather each slot's row.
    index_dtype = np.int32 if len(table) < 2**31 else np.int64
    index = first_row.astype(index_dtype)[:, None] + np.arange(
        length, dtype=index_dtype)[None, :]
    index[~mask] = 0

    def place(values, dtype):
      out = values[index].astype(dtype, copy=False)
      out[~mask] = 0
      return out
  del short, all_sizes

  tokens = {}
  for field, encode in _field_encoders(table, vocab, same_user).items():
    tokens[field] = place(encode(), np.int32)
  del same_user
  event_kind = place(table.kind, np.int8)
  labels = _window_labels(event_kind, mask, label_min_fraction)
  # Fields in their documented order.
  tokens = {field: tokens[field] for field in (*FIELDS, 'item') if field in tokens}
  result = Windows(tokens=tokens, mask=mask, event_kind=event_kind, kind=labels,
                   user_index=window_user)

  padding = 1 - mask.sum() / max(mask.size, 1)
  logging.info('Windows of %d events (stride %d, per %s): %d windows from %d '
               'sequences, %d short windows dropped (%d events), padding %.1f%%.',
               length, stride, unit, len(result), num_sequences,
               num_short, dropped_events, 100 * padding)
  logging.info('Windows per kind: %s', result.counts())
  return result
