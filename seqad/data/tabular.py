"""Streams a behaviour log (CSV or Parquet) into an `EventTable` by a column mapping.

Every format of seqad is a `Format`: which column holds the user or session, the
time, the event name, the item, the category, and how to read them. The file is
read in blocks by pyarrow (CSV or Parquet batches); each block is parsed with
vectorised column operations only, and every row that cannot be used is dropped
and counted under one reason of `DROP_REASONS`, first applicable reason first:

  malformed              wrong number of fields, a missing or non-integer id, a
                         time that is not a number or date
  unknown_event_type     an event name the format does not map (when unknown names
                         are not kept as their own types)
  bad_timestamp          an empty / NaN or negative time
  timestamp_out_of_range outside the format's [start, end) time range
  duplicate              an exact repeat of an earlier kept row

Rows out of (user, time) order are sorted and counted as 'unsorted' repairs. Where
most of the first block is malformed (another delimiter, another column count),
loading stops with a one-line error naming the file, the line and the problem.

Event names map onto `events.EVENT_TYPES`; names mapped to something else (say
'refund') become their own types, numbered after the common ones in order of
first appearance in the file. Ids given as strings are hashed to int64 (pandas'
fixed-key hash), so a labels file with the same strings joins them.
"""

import dataclasses
import os
from typing import Iterator

from absl import logging
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from seqad.data import events

DROP_REASONS = ('malformed', 'unknown_event_type', 'bad_timestamp',
                'timestamp_out_of_range', 'duplicate')
REPAIR_REASONS = ('unsorted',)
ROLES = ('user', 'session', 'time', 'time_offset', 'event', 'item', 'category')
TIME_UNITS = ('s', 'ms', 'iso', 'date')
MAX_EVENT_TYPES = events.MAX_EVENT_TYPES

_INTEGER_PATTERN = r'^[+-]?[0-9]{1,18}$'
_DECIMAL_PATTERN = r'^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$'
_NAN_NAMES = ('nan', 'NaN', 'NAN', 'NA', 'null', 'NULL', 'None')
_BLOCK_BYTES = 16 << 20
_PARQUET_BATCH_ROWS = 1 << 20


@dataclasses.dataclass
class LoadReport:
  """What happened to the rows of one load.

  Attributes:
    path: the file name(s), without directories.
    rows_read: data rows read (bad and blank lines included, a header not).
    rows_kept: rows in the returned table.
    dropped: reason -> rows dropped for it; the counts sum to rows_read - rows_kept.
    repaired: reason -> rows repaired; 'unsorted' counts rows that came before their
      predecessor in (user, time) order and were moved by the stable sort.
    event_types: the table's event type names, by index.
    first_bad_line: reason -> (file, line) of its first dropped row, where known.
  """

  path: str
  rows_read: int = 0
  rows_kept: int = 0
  dropped: dict[str, int] = dataclasses.field(
      default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
  repaired: dict[str, int] = dataclasses.field(
      default_factory=lambda: dict.fromkeys(REPAIR_REASONS, 0))
  event_types: list[str] = dataclasses.field(
      default_factory=lambda: list(events.EVENT_TYPES))
  first_bad_line: dict[str, str] = dataclasses.field(default_factory=dict)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def log(self) -> None:
    logging.info('Loaded %s: %d rows read, %d kept.', self.path, self.rows_read,
                 self.rows_kept)
    for reason, count in self.dropped.items():
      where = self.first_bad_line.get(reason)
      logging.info('  dropped %-24s %d%s', reason, count,
                   f' (first at {where})' if count and where else '')
    for reason, count in self.repaired.items():
      logging.info('  repaired %-23s %d', reason, count)


@dataclasses.dataclass(frozen=True)
class Format:
  """How to read one kind of behaviour log.

  Attributes:
    name: the format's name, used in messages.
    columns: role (one of `ROLES`) -> column name. 'time' is required, and one of
      'user' and 'session'. With both, the session is the sequence unit and the
      user its owner. 'time_offset' is added to 'time' (DIGINETICA's timeframe).
    header: whether the first line names the columns (CSV only).
    names: the column names of a CSV without header, in file order.
    delimiter: the CSV field separator.
    time_unit: 's' / 'ms' (Unix), 'iso' (ISO-8601, UTC unless it says otherwise) or
      'date' (YYYY-MM-DD, midnight UTC).
    time_offset_unit: 's' or 'ms', the unit of the 'time_offset' column.
    event_map: raw event name -> type name; a name outside `events.EVENT_TYPES`
      becomes a type of its own. Without an 'event' column every row is
      `default_event`.
    keep_unknown_events: keep names missing from `event_map` as their own types
      (True) or drop them as 'unknown_event_type' (False).
    default_event: the type of every row when there is no 'event' column.
    string_ids: roles whose values are strings, hashed to int64; other ids must be
      integers.
    extras: further columns returned as float64 arrays (price, quantity, shop).
    time_range: [start, end) Unix seconds to keep, or None for all.
  """

  name: str
  columns: dict[str, str]
  header: bool = True
  names: tuple[str, ...] | None = None
  delimiter: str = ','
  time_unit: str = 's'
  time_offset_unit: str = 'ms'
  event_map: dict[str, str] | None = None
  keep_unknown_events: bool = False
  default_event: str = 'view'
  string_ids: tuple[str, ...] = ()
  extras: tuple[str, ...] = ()
  time_range: tuple[int, int] | None = None

  def __post_init__(self):
    unknown = set(self.columns) - set(ROLES)
    if unknown:
      raise ValueError(f'{self.name}: unknown column roles {sorted(unknown)}; '
                       f'roles are {ROLES}.')
    if 'time' not in self.columns or not ({'user', 'session'} & set(self.columns)):
      raise ValueError(f'{self.name}: the column mapping needs a time column and a '
                       f'user or session column, got {self.columns}.')
    if self.time_unit not in TIME_UNITS:
      raise ValueError(f'{self.name}: time_unit must be one of {TIME_UNITS}, '
                       f'got {self.time_unit!r}.')
    if not self.header and not self.names:
      raise ValueError(f'{self.name}: a CSV without header needs column names.')

  def sequence_role(self) -> str:
    return 'session' if 'session' in self.columns else 'user'

  def needed_columns(self) -> list[str]:
    needed = list(dict.fromkeys(list(self.columns.values()) + list(self.extras)))
    return needed


@dataclasses.dataclass(frozen=True)
class Loaded:
  """A loaded log.

  Attributes:
    table: events sorted by (sequence, time); `user` holds the sequence id (the
      session id when the format has sessions), kind 0.
    report: the load report.
    extras: extra column name -> [events] float64, in table order.
    owners: [events] int64 owning user of each event when the format has both a
      session and a user column, else None; -1 - session where the user is missing.
  """

  table: events.EventTable
  report: LoadReport
  extras: dict[str, np.ndarray]
  owners: np.ndarray | None = None


class _Lines:
  """Maps a data row's index among the accepted rows to its line in the file."""

  def __init__(self, path: str, first_line: int):
    self.path = os.path.basename(path)
    self.first_line = first_line  # File line of the first data row.
    self.skipped: list[int] = []  # File lines of rows the CSV parser rejected.

  def line(self, accepted_index: int) -> int:
    line = self.first_line + accepted_index
    skipped = np.asarray(self.skipped)
    while True:
      moved = self.first_line + accepted_index + int(np.count_nonzero(skipped <= line))
      if moved == line:
        return line
      line = moved

  def where(self, accepted_index: int) -> str:
    return f'{self.path}:{self.line(accepted_index)}'


def _check_file(path: str, fmt: Format) -> None:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{fmt.name} file not found: {path}')
  if os.path.getsize(path) == 0:
    raise ValueError(f'{path}: the file is empty; expected a {fmt.name} log.')


def _csv_header(path: str, fmt: Format) -> list[str]:
  """The column names, checked against the mapping; raises naming line 1."""
  with open(path, 'rb') as stream:
    first = stream.readline().decode('utf-8', errors='replace').rstrip('\r\n')
  if not first.strip():
    raise ValueError(f'{path}, line 1: the line is empty; expected '
                     f'{"a header" if fmt.header else "data"} of a {fmt.name} log.')
  fields = first.split(fmt.delimiter)
  names = [name.strip().strip('"') for name in fields] if fmt.header else list(fmt.names)
  missing = [name for name in fmt.needed_columns() if name not in names]
  if missing:
    hint = ''
    if len(fields) == 1:
      hint = f' The line has no {fmt.delimiter!r}: wrong delimiter?'
    raise ValueError(
        f'{path}, line 1: column(s) {missing} named by the {fmt.name} column mapping '
        f'are not among the columns {names}.{hint}')
  return names


def _csv_batches(path: str, fmt: Format, lines: _Lines, max_rows: int | None,
                 typed: bool, threads: bool) -> Iterator[pa.RecordBatch]:
  """The CSV's needed columns in blocks.

  With `typed`, integer columns are converted by the CSV reader itself, which is
  fastest but fails on the first bad value; otherwise every column is read as
  strings and checked value by value. With `threads` the reader uses every core
  but cannot tell the line of a row with the wrong number of fields.
  """
  names = _csv_header(path, fmt)

  def on_invalid(row) -> str:
    # The threaded reader does not know the line: None asks for a re-read.
    lines.skipped.append(row.number if row.number and row.number > 0 else None)
    return 'skip'

  types = {name: pa.string() for name in fmt.needed_columns()}
  if typed:
    types.update({fmt.columns[role]: pa.int64() for role in _integer_roles(fmt)})
    if 'event' in fmt.columns:
      types[fmt.columns['event']] = pa.dictionary(pa.int32(), pa.string())
  source = path
  if max_rows is not None:
    source = pa.BufferReader(_head_lines(path, max_rows + int(fmt.header)))
  reader = pa_csv.open_csv(
      source,
      read_options=pa_csv.ReadOptions(
          column_names=None if fmt.header else names, use_threads=threads,
          block_size=_BLOCK_BYTES),
      parse_options=pa_csv.ParseOptions(delimiter=fmt.delimiter,
                                        invalid_row_handler=on_invalid,
                                        ignore_empty_lines=False),
      convert_options=pa_csv.ConvertOptions(
          include_columns=fmt.needed_columns(), column_types=types,
          strings_can_be_null=True, null_values=['', *_NAN_NAMES]))
  yield from reader


def _integer_roles(fmt: Format) -> list[str]:
  roles = [role for role in ('user', 'session', 'item', 'category', 'time_offset')
           if role in fmt.columns and role not in fmt.string_ids]
  if fmt.time_unit in ('s', 'ms'):
    roles.append('time')
  return roles


def _head_lines(path: str, num_lines: int) -> pa.Buffer:
  """The first `num_lines` lines of a file, as one buffer."""
  source = pa.memory_map(path)
  size, found, offset = source.size(), 0, 0
  while offset < size and found < num_lines:
    chunk = np.frombuffer(source.read_at(min(_BLOCK_BYTES, size - offset), offset),
                          dtype=np.uint8)
    newlines = np.flatnonzero(chunk == ord('\n'))
    if found + len(newlines) >= num_lines:
      return source.read_at(offset + int(newlines[num_lines - found - 1]) + 1, 0)
    found += len(newlines)
    offset += len(chunk)
  return source.read_at(size, 0)


def _parquet_batches(path: str, fmt: Format,
                     max_rows: int | None) -> Iterator[pa.RecordBatch]:
  try:
    parquet = pq.ParquetFile(path)
  except pa.ArrowInvalid as error:
    raise ValueError(f'{path}: not a readable Parquet file ({error}).') from None
  names = parquet.schema_arrow.names
  missing = [name for name in fmt.needed_columns() if name not in names]
  if missing:
    raise ValueError(f'{path}, schema: column(s) {missing} named by the {fmt.name} '
                     f'column mapping are not among the columns {names}.')
  remaining = max_rows
  for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS,
                                    columns=fmt.needed_columns()):
    if remaining is not None:
      batch = batch.slice(0, remaining)
      remaining -= batch.num_rows
    yield batch
    if remaining is not None and remaining <= 0:
      return


def _as_string(array: pa.Array) -> pa.Array:
  if pa.types.is_dictionary(array.type):
    array = array.cast(array.type.value_type)
  return array if pa.types.is_string(array.type) else array.cast(pa.string())


def parse_integers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
  """Returns ([rows] int64 values, [rows] bool valid) of a column of integers.

  Missing values, non-integers and numbers of more than 18 digits are invalid.
  """
  if pa.types.is_integer(array.type):
    if not array.null_count:
      return (np.asarray(array.cast(pa.int64())), np.ones(len(array), bool))
    valid = np.asarray(array.is_valid())
    return np.asarray(array.fill_null(0).cast(pa.int64())), valid
  array = _as_string(array)
  try:
    values = pc.cast(array, pa.int64())
    valid = np.asarray(values.is_valid())
    return np.asarray(values.fill_null(0)), valid
  except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
    pass
  # Only a block with some bad value gets here: check every value, then parse.
  valid = pc.fill_null(pc.match_substring_regex(array, _INTEGER_PATTERN), False)
  cleaned = pc.replace_substring_regex(pc.if_else(valid, array, '0'), r'^\+', '')
  return np.asarray(pc.cast(cleaned, pa.int64())), np.asarray(valid)


def _parse_decimals(array: pa.Array, valid: np.ndarray, missing: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Where `array` (not `valid` as an integer) holds a finite decimal number.

  Returns:
    rows: [hits] int64 row indices, and values: [hits] float64 numbers.
  """
  rows = np.flatnonzero(~valid & ~missing)
  if not len(rows) or pa.types.is_integer(array.type):
    return np.zeros(0, np.int64), np.zeros(0)
  text = _as_string(array).take(pa.array(rows))
  decimal = np.asarray(pc.fill_null(pc.match_substring_regex(text, _DECIMAL_PATTERN),
                                    False))
  rows, text = rows[decimal], text.filter(pa.array(decimal))
  values = np.asarray(pc.cast(text, pa.float64()))
  finite = np.isfinite(values) & (np.abs(values) < 2.0**62)
  return rows[finite], values[finite]


def _hash_strings(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
  """([rows] int64 hashes, [rows] bool valid) of a string id column."""
  array = _as_string(array)
  valid = np.asarray(array.is_valid())
  encoded = pc.dictionary_encode(array.fill_null(''))
  distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
  hashes = pd.util.hash_array(distinct.astype(object), categorize=False).view(np.int64)
  return hashes[np.asarray(encoded.indices)], valid


class _TimeParser:
  """Parses the time column(s) of a batch into Unix seconds."""

  def __init__(self, fmt: Format):
    self.fmt = fmt

  def __call__(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns [rows] int64 seconds, [rows] bool malformed, [rows] bool bad."""
    fmt = self.fmt
    seconds, malformed, missing = self._parse(batch.column(fmt.columns['time']),
                                              fmt.time_unit)
    if 'time_offset' in fmt.columns:
      offset, offset_valid = self._offset(batch.column(fmt.columns['time_offset']))
      offset_missing = ~np.asarray(batch.column(fmt.columns['time_offset']).is_valid())
      seconds = seconds + offset
      malformed |= ~offset_valid & ~offset_missing
      missing |= offset_missing
      missing |= offset < 0
    bad = missing | (seconds < 0)
    return seconds, malformed & ~missing, bad & ~malformed

  def _offset(self, array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    values, valid = parse_integers(array)
    if self.fmt.time_offset_unit == 'ms':
      values = values // 1000
    return values, valid

  def _parse(self, array: pa.Array, unit: str):
    missing = ~np.asarray(array.is_valid())
    if unit in ('s', 'ms'):
      values, valid = parse_integers(array)
      if not valid.all():
        # Decimal numbers (1700000000.25, 1.7e12) are times too, floored.
        rows, numbers = _parse_decimals(array, valid, missing)
        if len(rows):
          values, valid = values.copy(), valid.copy()
          values[rows] = np.floor(numbers)
          valid[rows] = True
      if unit == 'ms':
        values = values // 1000
      return values, ~valid & ~missing, missing
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
      values = array.cast(pa.timestamp('s')).cast(pa.int64()).fill_null(0)
      return np.asarray(values), np.zeros(len(array), bool), missing
    text = _as_string(array).to_pandas()
    if unit == 'date':
      parsed = pd.to_datetime(text, format='%Y-%m-%d', errors='coerce', utc=True)
    else:
      parsed = pd.to_datetime(text, format='ISO8601', errors='coerce', utc=True)
    failed = parsed.isna().to_numpy() & ~missing
    # Floor to whole seconds, before or after 1970 alike.
    values = parsed.to_numpy(dtype='datetime64[ns]', na_value=np.datetime64(0, 'ns'))
    values = values.astype('datetime64[s]').astype(np.int64)
    return values, failed, missing


class _EventMapper:
  """Maps event names to type indices, giving unmapped names their own types."""

  def __init__(self, fmt: Format):
    self.fmt = fmt
    self.names = list(events.EVENT_TYPES)
    self.index = {}
    for raw, common in (fmt.event_map or {}).items():
      self.index[raw] = self.type_of(common)

  def type_of(self, name: str) -> int:
    """The index of a type name, adding it as a type of its own if new."""
    if name not in self.names:
      if len(self.names) >= MAX_EVENT_TYPES:
        raise ValueError(f'{self.fmt.name}: more than {MAX_EVENT_TYPES} event types.')
      self.names.append(name)
    return self.names.index(name)

  def __call__(self, array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Returns [rows] int64 type indices (-1 unknown) and [rows] bool missing."""
    if pa.types.is_dictionary(array.type) and pa.types.is_string(
        array.type.value_type):
      encoded = array
    else:
      encoded = pc.dictionary_encode(_as_string(array))
    missing = ~np.asarray(encoded.is_valid())
    lookup = []
    for name in encoded.dictionary.to_pylist():
      if name not in self.index and self.fmt.keep_unknown_events and name:
        self.index[name] = self.type_of(name)
      lookup.append(self.index.get(name, -1))
    codes = np.append(np.asarray(lookup, np.int8), -1).astype(np.int8)
    indices = np.asarray(encoded.indices.fill_null(-1))
    return codes[indices], missing


def _parse_batch(batch: pa.RecordBatch, fmt: Format, parse_time: _TimeParser,
                 map_events: _EventMapper) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Columns of one batch and each row's drop reason.

  Returns:
    columns: 'user', 'time', 'event', 'item', 'category' (+ 'owner', extras) ->
      [rows] arrays: ids and times int32 where they fit (`events.narrow`), else
      int64; events int8; extras float64.
    reason: [rows] int8 index into `DROP_REASONS`, or -1 for a usable row.
  """
  rows = batch.num_rows
  malformed = np.zeros(rows, bool)
  columns = {}
  sequence = fmt.sequence_role()
  id_roles = {'user': sequence, 'item': 'item', 'category': 'category'}
  if sequence == 'session' and 'user' in fmt.columns:
    id_roles['owner'] = 'user'
  for key, role in id_roles.items():
    if role not in fmt.columns:
      columns[key] = np.zeros(rows, np.int64)
      continue
    parse = _hash_strings if role in fmt.string_ids else parse_integers
    columns[key], valid = parse(batch.column(fmt.columns[role]))
    if key == 'owner':
      # Anonymous sessions (no user id) are owned by themselves.
      columns[key] = np.where(valid, columns[key], -1 - columns['user'])
    else:
      malformed |= ~valid

  columns['time'], time_malformed, bad_time = parse_time(batch)
  malformed |= time_malformed
  if 'event' in fmt.columns:
    event, event_missing = map_events(batch.column(fmt.columns['event']))
    malformed |= event_missing
  else:
    event = np.full(rows, map_events.type_of(fmt.default_event), np.int8)
  columns['event'] = event
  for name in fmt.extras:
    columns[name] = np.asarray(batch.column(name).cast(pa.float64(), safe=False)
                               .fill_null(np.nan))

  reason = np.full(rows, -1, np.int8)
  checks = [malformed, event < 0, bad_time]
  if fmt.time_range is not None:
    start, end = fmt.time_range
    checks.append((columns['time'] < start) | (columns['time'] >= end))
  for index, failed in reversed(list(enumerate(checks))):
    reason[failed] = index
  for key in ('user', 'owner', 'item', 'category', 'time'):
    if key in columns:
      columns[key] = events.narrow(columns[key])
  return columns, reason


def _index_dtype(rows: int) -> type:
  return np.int32 if rows < 2**31 else np.int64


def _sorted_order(user: np.ndarray, time: np.ndarray) -> np.ndarray:
  """[rows] stable permutation sorting rows by (user, time); int32 where it fits.

  A log that holds each user's rows together and in time order (Taobao's, sorted
  by user id as a string) only needs its user blocks reordered, which is linear.
  """
  rows = len(user)
  change = np.flatnonzero(user[1:] != user[:-1])
  change += 1
  starts = np.concatenate([[0], change])
  del change
  block_user = user[starts]
  # Within a block the user is the same, so its times must not decrease.
  in_order = time[1:] >= time[:-1]
  in_order[starts[1:] - 1] = True
  time_sorted = bool(np.all(in_order))
  del in_order
  by_user = np.argsort(block_user, kind='stable')
  ordered_users = block_user[by_user]
  if time_sorted and not np.any(ordered_users[1:] == ordered_users[:-1]):
    index = _index_dtype(rows)
    lengths = np.diff(np.append(starts, rows))[by_user]
    shift = starts[by_user] - (np.cumsum(lengths) - lengths)
    order = np.repeat(shift.astype(index), lengths)
    order += np.arange(rows, dtype=index)
    return order
  # One int64 key sorts faster than lexsort on two, when the ranges allow it.
  user_min, time_min = int(user.min()), int(time.min())
  user_span = int(user.max()) - user_min + 1
  time_span = int(time.max()) - time_min + 1
  if user_span * time_span < 2**62:
    key = user.astype(np.int64)
    key -= user_min
    key *= time_span
    key += time
    key -= time_min
    return np.argsort(key, kind='stable')
  return np.lexsort((time, user))


def _gather(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
  return values if order is None else values[order]


def _duplicates_in_sorted(user: np.ndarray, time: np.ndarray,
                          file_columns: dict[str, np.ndarray],
                          order: np.ndarray | None) -> np.ndarray:
  """Sorted positions of rows that repeat an earlier row exactly.

  Args:
    user, time: [rows] the sorted user and time columns.
    file_columns: every compared column, in file order.
    order: the sorting permutation (None: the file is sorted).

  Equal rows share (user, time) and the stable sort keeps them in file order, so
  only runs of such rows are compared in full, and the first of each is kept.
  """
  same_key = user[1:] == user[:-1]
  same_key &= time[1:] == time[:-1]
  if not same_key.any():
    return np.zeros(0, np.int64)
  in_run = np.zeros(len(user), dtype=bool)
  in_run[1:] |= same_key
  in_run[:-1] |= same_key
  del same_key
  candidates = np.flatnonzero(in_run)
  file_rows = candidates if order is None else order[candidates]
  frame = pd.DataFrame({name: values[file_rows] for name, values in
                        file_columns.items()})
  return candidates[frame.duplicated(keep='first').to_numpy(dtype=bool)]


def _count_unsorted(user: np.ndarray, time: np.ndarray) -> int:
  """Rows that come before their predecessor in (user, time) order."""
  earlier = user[1:] < user[:-1]
  earlier |= (user[1:] == user[:-1]) & (time[1:] < time[:-1])
  return int(np.count_nonzero(earlier))


def _check_mostly_malformed(path: str, fmt: Format, lines: _Lines, rows: int,
                            bad_values: int, first_bad_value: int | None) -> None:
  """Raises if most rows so far are unreadable: the file is in another format.

  Args:
    rows: rows the CSV parser accepted so far.
    bad_values: how many of them have a missing or unparseable value.
    first_bad_value: the accepted index of the first of those, if any.
  """
  bad = len(lines.skipped) + bad_values
  total = rows + len(lines.skipped)
  if total == 0 or bad * 2 <= total:
    return
  if lines.skipped and (first_bad_value is None or
                        lines.skipped[0] < lines.line(first_bad_value)):
    where = f'line {lines.skipped[0]} has the wrong number of fields'
  else:
    where = f'line {lines.line(first_bad_value)} has a missing or unparseable value'
  expected = ','.join(fmt.names) if not fmt.header else ','.join(fmt.needed_columns())
  raise ValueError(
      f'{path} does not look like a {fmt.name} log: {bad} of {total} rows are '
      f'malformed; {where} (expected {fmt.delimiter!r}-separated columns {expected}).')


def read_events(path: str | os.PathLike, fmt: Format, *,
                max_rows: int | None = None) -> Loaded:
  """Reads one CSV or Parquet log (chosen by a '.parquet' / '.pq' suffix).

  Args:
    path: the file.
    fmt: how to read it.
    max_rows: read only the first rows (lines of a CSV).

  Returns:
    The events sorted by (sequence, time) and what happened to every row.

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: one line naming the file, the line and the problem, for an empty
      file, a mapping naming a missing column, or a file that is mostly malformed.
  """
  path = os.fspath(path)
  if max_rows is not None and max_rows < 1:
    raise ValueError(f'max_rows must be positive or None, got {max_rows}.')
  _check_file(path, fmt)
  parquet = path.endswith(('.parquet', '.pq'))
  # Fastest first: typed columns on every core; then one thread, which knows the
  # line of a row with the wrong field count; then text, checked value by value.
  attempts = [(True, True), (True, False), (False, False)]
  while attempts:
    typed, threads = attempts.pop(0)
    lines = _Lines(path, first_line=1 + int(fmt.header and not parquet))
    batches = (_parquet_batches(path, fmt, max_rows) if parquet
               else _csv_batches(path, fmt, lines, max_rows, typed, threads))
    try:
      return _read_batches(path, fmt, lines, batches)
    except _LinesUnknown:
      logging.info('%s has rows with a wrong field count; reading it again on one '
                   'thread to name their lines.', path)
    except pa.ArrowInvalid as error:
      # A value the fast typed reader cannot convert: read again, checking each.
      if parquet or not typed:
        raise ValueError(f'{path}: cannot read the file ({error}).') from None
      logging.info('%s has values that are not integers; reading it as text.', path)
      attempts = [(False, False)]
  raise AssertionError('unreachable')


class _LinesUnknown(Exception):
  """The multi-threaded reader skipped a row without telling its line."""


def _read_batches(path: str, fmt: Format, lines: _Lines,
                  batches: Iterator[pa.RecordBatch]) -> Loaded:
  """Parses, checks, sorts and deduplicates the batches of one file."""
  parse_time, map_events = _TimeParser(fmt), _EventMapper(fmt)
  parts, counts, rows = [], np.zeros(len(DROP_REASONS), np.int64), 0
  first_bad = {}
  for batch in batches:
    if lines.skipped and lines.skipped[-1] is None:
      raise _LinesUnknown()
    columns, reason = _parse_batch(batch, fmt, parse_time, map_events)
    if not parts:
      # Fail on the first block rather than after reading a large file.
      bad_values = np.flatnonzero(reason == 0)
      _check_mostly_malformed(path, fmt, lines, batch.num_rows, len(bad_values),
                              int(bad_values[0]) if len(bad_values) else None)
    rows_before = rows
    rows += batch.num_rows
    del batch
    dropped = reason >= 0
    if dropped.any():
      found = np.bincount(reason[dropped], minlength=len(DROP_REASONS))
      counts += found
      for index in np.flatnonzero(found):
        name = DROP_REASONS[index]
        if name not in first_bad:
          first_bad[name] = lines.where(rows_before + int(np.argmax(reason == index)))
    parts.append((columns, dropped))
  if lines.skipped and lines.skipped[-1] is None:
    raise _LinesUnknown()
  # Arrow's allocator keeps freed blocks for reuse; hand them back before the
  # columns are joined and sorted, which is when memory peaks.
  pa.default_memory_pool().release_unused()
  first_value = first_bad.get('malformed')
  _check_mostly_malformed(path, fmt, lines, rows, int(counts[0]), None)

  report = LoadReport(path=os.path.basename(path))
  report.rows_read = rows + len(lines.skipped)
  if report.rows_read == 0:
    raise ValueError(f'{path}: the file has no data rows; expected a {fmt.name} log.')
  if lines.skipped and (first_value is None or
                        lines.skipped[0] < int(first_value.rsplit(':', 1)[1])):
    first_bad['malformed'] = f'{lines.path}:{lines.skipped[0]}'
  counts[0] += len(lines.skipped)

  columns = _concatenate(parts)
  del parts
  compared = [name for name in ('user', 'time', 'event', 'item', 'category', 'owner')
              if name in columns]
  unsorted = _count_unsorted(columns['user'], columns['time'])
  order = _sorted_order(columns['user'], columns['time']) if unsorted else None
  user, time = _gather(columns['user'], order), _gather(columns['time'], order)
  repeated = _duplicates_in_sorted(user, time, {name: columns[name] for name in compared},
                                   order)
  if len(repeated):
    # Moved rows are counted among the rows that are not duplicates.
    in_file = np.ones(len(user), dtype=bool)
    in_file[repeated if order is None else order[repeated]] = False
    unsorted = _count_unsorted(columns['user'][in_file], columns['time'][in_file])
    del in_file
    kept = np.ones(len(user), dtype=bool)
    kept[repeated] = False
    order = np.flatnonzero(kept) if order is None else order[kept]
    user, time = user[kept], time[kept]
    del kept
  counts[DROP_REASONS.index('duplicate')] = len(repeated)
  report.dropped = {name: int(count) for name, count in zip(DROP_REASONS, counts)}
  report.first_bad_line = first_bad
  report.repaired['unsorted'] = unsorted

  # One column at a time, so at most one column exists twice.
  del columns['user'], columns['time']
  taken = {}
  for name in list(columns):
    taken[name] = _gather(columns.pop(name), order)
  del order
  table = events.EventTable(
      user=user, timestamp=time, event_type=taken.pop('event'), item=taken.pop('item'),
      category=taken.pop('category'), kind=np.zeros(len(user), dtype=np.int8))
  owners = taken.pop('owner', None)
  report.rows_kept = len(table)
  report.event_types = list(map_events.names)
  if not len(table):
    logging.warning('No usable rows in %s.', path)
  report.log()
  return Loaded(table=table, report=report, extras=taken, owners=owners)


def _concatenate(parts: list[tuple[dict[str, np.ndarray], np.ndarray]]
                 ) -> dict[str, np.ndarray]:
  """Joins the blocks' kept rows one column at a time, freeing each as it goes.

  Args:
    parts: per block, (columns, [rows] bool dropped).
  """
  if not parts:
    return {name: np.zeros(0, np.int32 if name in ('user', 'time', 'item', 'category')
                           else np.int8)
            for name in ('user', 'time', 'event', 'item', 'category')}
  columns = {}
  for name in list(parts[0][0]):
    pieces = []
    for part, dropped in parts:
      values = part.pop(name)
      pieces.append(values[~dropped] if dropped.any() else values)
      del values
    columns[name] = np.concatenate(pieces) if len(pieces) > 1 else pieces[0].copy()
    del pieces
  return columns
