"""The columnar event table that every loader, simulator and injector speaks.

An `EventTable` holds one row per behaviour event in parallel NumPy columns:

  user        [events] int64  raw user id (stays inside the data layer)
  timestamp   [events] int64  Unix seconds, UTC
  event_type  [events] int8   index into `EVENT_TYPES`
  item        [events] int64  raw item id
  category    [events] int64  raw category id
  kind        [events] int8   index into `ANOMALY_KINDS`; 0 for genuine events

The four id and time columns may also be int32 (`narrow`): the file loaders store
them so when every value fits with room to spare (`NARROW_LIMIT`), which halves a
large log's memory. Whatever builds a table with `from_columns` gets int64, and
combining narrow and wide tables (`concatenate`) gives int64 columns.

Rows are kept sorted by (user, timestamp); `sort()` restores that order with a
stable sort, so events with equal timestamps keep their relative order.
"""

import dataclasses

import numpy as np

# Event types shared by all sources; loaders map their own names onto these.
EVENT_TYPES = ('view', 'cart', 'fav', 'buy')
VIEW, CART, FAV, BUY = range(len(EVENT_TYPES))
# A source may add types of its own after these, up to this many in all.
MAX_EVENT_TYPES = 127

# Anomaly kinds; index 0 is the genuine (normal) label.
ANOMALY_KINDS = ('normal', 'click_bot', 'order_brushing', 'account_takeover',
                 'scraper', 'cart_farming', 'order_anomaly',
                 'labelled')  # 'labelled': from a labels file that names no kind.
NORMAL = 0

_COLUMN_DTYPES = {
    'user': np.int64,
    'timestamp': np.int64,
    'event_type': np.int8,
    'item': np.int64,
    'category': np.int64,
    'kind': np.int8,
}
COLUMNS = tuple(_COLUMN_DTYPES)
# Columns that may be stored as int32 instead of int64.
NARROWABLE = ('user', 'timestamp', 'item', 'category')
# int32 columns hold values of magnitude below this: 2**28 (8.5 years of seconds)
# of headroom, so sums such as a timestamp plus a few days cannot overflow.
NARROW_LIMIT = 2**31 - 2**28


def narrow(values: np.ndarray) -> np.ndarray:
  """`values` (integers) as int32 if all fit within `NARROW_LIMIT`, else int64."""
  values = np.asarray(values)
  if values.dtype == np.int32:
    return values
  if len(values) and (values.min() <= -NARROW_LIMIT or values.max() >= NARROW_LIMIT):
    return values.astype(np.int64, copy=False)
  return values.astype(np.int32)


def kind_index(name: str) -> int:
  """Returns the integer label of an anomaly kind name."""
  if name not in ANOMALY_KINDS:
    raise ValueError(f'Unknown anomaly kind {name!r}; known: {ANOMALY_KINDS}.')
  return ANOMALY_KINDS.index(name)


@dataclasses.dataclass(frozen=True)
class EventTable:
  """Behaviour events as parallel columns; see the module docstring."""

  user: np.ndarray
  timestamp: np.ndarray
  event_type: np.ndarray
  item: np.ndarray
  category: np.ndarray
  kind: np.ndarray

  def __post_init__(self):
    lengths = {name: len(getattr(self, name)) for name in COLUMNS}
    if len(set(lengths.values())) != 1:
      raise ValueError(f'EventTable columns differ in length: {lengths}')
    for name, dtype in _COLUMN_DTYPES.items():
      column = getattr(self, name)
      allowed = (dtype, np.int32) if name in NARROWABLE else (dtype,)
      if column.ndim != 1 or column.dtype not in allowed:
        raise TypeError(
            f'EventTable.{name} must be a 1-D '
            f'{" or ".join(np.dtype(d).name for d in allowed)} array, '
            f'got {column.ndim}-D {column.dtype}.')
    if len(self.event_type) and (
        self.event_type.min() < 0 or self.event_type.max() >= MAX_EVENT_TYPES):
      raise ValueError('EventTable.event_type holds an unknown event type.')
    if len(self.kind) and (
        self.kind.min() < 0 or self.kind.max() >= len(ANOMALY_KINDS)):
      raise ValueError('EventTable.kind holds an unknown anomaly kind.')

  @classmethod
  def from_columns(cls, *, user, timestamp, event_type, item, category,
                   kind=None) -> 'EventTable':
    """Builds a table, casting each column to its dtype; `kind` defaults to 0."""
    user = np.asarray(user, dtype=np.int64)
    if kind is None:
      kind = np.zeros(len(user), dtype=np.int8)
    return cls(
        user=user,
        timestamp=np.asarray(timestamp, dtype=np.int64),
        event_type=np.asarray(event_type, dtype=np.int8),
        item=np.asarray(item, dtype=np.int64),
        category=np.asarray(category, dtype=np.int64),
        kind=np.asarray(kind, dtype=np.int8),
    )

  @classmethod
  def empty(cls) -> 'EventTable':
    return cls(**{name: np.zeros(0, dtype) for name, dtype in _COLUMN_DTYPES.items()})

  def __len__(self) -> int:
    return len(self.user)

  def columns(self) -> dict[str, np.ndarray]:
    return {name: getattr(self, name) for name in COLUMNS}

  def nbytes(self) -> int:
    return sum(column.nbytes for column in self.columns().values())

  def with_kind(self, kind: np.ndarray) -> 'EventTable':
    """The same rows with new [events] anomaly kinds; other columns shared."""
    return dataclasses.replace(self, kind=np.asarray(kind, dtype=np.int8))

  def take(self, index: np.ndarray) -> 'EventTable':
    """Rows at `index` (integer positions or a boolean mask), in that order."""
    return EventTable(**{name: col[index] for name, col in self.columns().items()})

  def sort(self) -> 'EventTable':
    """Rows ordered by (user, timestamp), ties kept in their current order."""
    order = np.lexsort((self.timestamp, self.user))
    return self.take(order)

  def is_sorted(self) -> bool:
    if len(self) < 2:
      return True
    if not np.all(self.user[1:] >= self.user[:-1]):
      return False
    # Boolean arrays only: no copies of the columns.
    in_order = self.timestamp[1:] >= self.timestamp[:-1]
    in_order |= self.user[1:] != self.user[:-1]
    return bool(np.all(in_order))

  def users(self) -> np.ndarray:
    """Distinct user ids, ascending."""
    return np.unique(self.user)

  def select_users(self, users: np.ndarray) -> 'EventTable':
    """The rows of the given users, order preserved."""
    return self.take(np.isin(self.user, users))

  @staticmethod
  def concatenate(tables: 'list[EventTable]') -> 'EventTable':
    """Rows of all tables, in order (call `sort()` to interleave users)."""
    if not tables:
      return EventTable.empty()
    return EventTable(**{
        name: np.concatenate([getattr(t, name) for t in tables])
        for name in COLUMNS})
