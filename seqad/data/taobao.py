"""Loads the Taobao UserBehavior CSV into an `EventTable`, accounting for every row.

The file has no header and five comma-separated columns:

  user_id, item_id, category_id, behavior_type, timestamp

with behaviour types `pv` (page view, mapped to 'view'), `cart`, `fav` and `buy`, and
Unix-second timestamps. Rows that cannot be used are dropped and counted per reason in a
`LoadReport`; nothing is dropped silently. Each dropped row is counted once, under the
first reason that applies, in the order of `DROP_REASONS`.

The file is read in blocks of whole lines: NumPy counts the fields of every line, the
lines with five fields go through pandas' C parser, and every later check is a
vectorised operation on whole columns.
"""

import csv
import dataclasses
import datetime
import io
import os
from typing import Iterator

from absl import logging
import numpy as np
import pandas as pd

from seqad.data import events

COLUMN_NAMES = ('user_id', 'item_id', 'category_id', 'behavior_type', 'timestamp')

# The file's behaviour names, in the order of `events.EVENT_TYPES`.
BEHAVIOR_NAMES = ('pv', 'cart', 'fav', 'buy')

DROP_REASONS = ('malformed', 'unknown_event_type', 'timestamp_out_of_range', 'duplicate')
REPAIR_REASONS = ('unsorted',)

_CHINA = datetime.timezone(datetime.timedelta(hours=8))

# The documented span of the dataset, 2017-11-25 to 2017-12-03 China time, as a
# half-open [start, end) range of Unix seconds.
DEFAULT_TAOBAO_RANGE = (
    int(datetime.datetime(2017, 11, 25, tzinfo=_CHINA).timestamp()),
    int(datetime.datetime(2017, 12, 4, tzinfo=_CHINA).timestamp()),
)

# Ids and timestamps in the dataset have at most 10 digits; 18 digits always fit int64,
# so longer numbers are treated as malformed rather than risking an overflow.
_INTEGER_PATTERN = r'[+-]?[0-9]{1,18}'

_BLOCK_BYTES = 64 << 20


@dataclasses.dataclass
class LoadReport:
  """What happened to the rows of one file.

  Attributes:
    path: the file name.
    rows_read: data lines read (blank and bad lines included).
    rows_kept: rows in the returned table.
    dropped: reason -> rows dropped for it; the counts sum to rows_read - rows_kept.
    repaired: reason -> rows repaired; 'unsorted' counts rows that came before their
      predecessor in (user, timestamp) order and were moved by the stable sort.
  """

  path: str
  rows_read: int = 0
  rows_kept: int = 0
  dropped: dict[str, int] = dataclasses.field(
      default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
  repaired: dict[str, int] = dataclasses.field(
      default_factory=lambda: dict.fromkeys(REPAIR_REASONS, 0))

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def log(self) -> None:
    logging.info('Loaded %s: %d rows read, %d kept.', self.path, self.rows_read,
                 self.rows_kept)
    for reason, count in self.dropped.items():
      logging.info('  dropped %-24s %d', reason, count)
    for reason, count in self.repaired.items():
      logging.info('  repaired %-23s %d', reason, count)


def _line_blocks(path: str, max_rows: int | None) -> Iterator[bytes]:
  """Yields the file's first `max_rows` lines in blocks, each ending with a newline."""
  remaining = max_rows
  carry = b''
  with open(path, 'rb') as stream:
    while remaining is None or remaining > 0:
      chunk = stream.read(_BLOCK_BYTES)
      at_end = not chunk
      data = carry + chunk
      if at_end:
        if not data:
          return
        if not data.endswith(b'\n'):
          data += b'\n'
        carry = b''
      else:
        # Hold back the unfinished last line until the next read completes it.
        cut = data.rfind(b'\n') + 1
        data, carry = data[:cut], data[cut:]
        if not data:
          continue

      if remaining is not None:
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord('\n'))
        if len(newlines) > remaining:
          data = data[:newlines[remaining - 1] + 1]
        remaining -= min(len(newlines), remaining)
      yield data
      if at_end:
        return


def _split_good_lines(block: bytes) -> tuple[np.ndarray, bytes]:
  """Counts fields per line and keeps the lines with the expected number.

  Returns:
    fields: [lines] int64 number of comma-separated fields of each line.
    good: the bytes of the lines with five fields, '\\r' before a newline removed.
  """
  buffer = np.frombuffer(block, dtype=np.uint8)
  newlines = np.flatnonzero(buffer == ord('\n'))
  starts = np.concatenate([[0], newlines[:-1] + 1])
  commas = np.flatnonzero(buffer == ord(','))
  fields = np.searchsorted(commas, newlines) - np.searchsorted(commas, starts) + 1

  keep = np.repeat(fields == len(COLUMN_NAMES), newlines - starts + 1)
  # Windows line endings would otherwise leave '\r' glued to the last field.
  carriage = newlines[newlines > 0] - 1
  carriage = carriage[buffer[carriage] == ord('\r')]
  keep[carriage] = False
  return fields, buffer[keep].tobytes()


def _read_frame(good: bytes, dtype) -> pd.DataFrame:
  if not good:
    return pd.DataFrame({name: pd.Series([], dtype=str) for name in COLUMN_NAMES})
  return pd.read_csv(
      io.BytesIO(good), header=None, names=list(COLUMN_NAMES), dtype=dtype,
      na_filter=False, quoting=csv.QUOTE_NONE, lineterminator='\n', engine='c')


def _parse_integers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
  """Returns ([rows] int64 values, [rows] bool valid) of a column of strings."""
  valid = column.str.fullmatch(_INTEGER_PATTERN).to_numpy(dtype=bool)
  values = column.where(valid, '0').astype(np.int64).to_numpy()
  return values, valid


def _parse_block(block: bytes) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
  """Parses one block of lines.

  Returns:
    fields: [lines] int64 field count of every line.
    columns: column name -> [good lines] int64 values (behaviour as an event-type
      index, -1 when unknown).
    valid: [good lines] bool, False where some numeric field is not an integer.
  """
  fields, good = _split_good_lines(block)
  numeric = [name for name in COLUMN_NAMES if name != 'behavior_type']

  # The C parser's own integer parsing is fast; only a block where some column
  # failed to parse as int64 is read again as strings and checked field by field.
  frame = _read_frame(good, dtype={'behavior_type': 'category'})
  if all(frame[name].dtype == np.int64 for name in numeric):
    columns = {name: frame[name].to_numpy() for name in numeric}
    valid = np.ones(len(frame), dtype=bool)
  else:
    frame = _read_frame(good, dtype=str)
    columns, valid = {}, np.ones(len(frame), dtype=bool)
    for name in numeric:
      columns[name], column_valid = _parse_integers(frame[name])
      valid &= column_valid
  if len(frame) != np.count_nonzero(fields == len(COLUMN_NAMES)):
    raise RuntimeError('pandas split the lines differently from the field count.')

  # Map the few distinct names, then look every row's code up in that map; the
  # appended -1 catches code -1 (missing), which would otherwise wrap around.
  behaviour = frame['behavior_type'].astype('category').cat
  lookup = pd.Index(BEHAVIOR_NAMES).get_indexer(behaviour.categories.astype(str))
  columns['behavior_type'] = np.append(lookup, -1)[behaviour.codes].astype(np.int64)
  return fields, columns, valid


def _check_column_count(path: str, fields: np.ndarray) -> None:
  """Raises if most lines so far have the wrong number of fields: wrong format."""
  wrong = fields != len(COLUMN_NAMES)
  if np.count_nonzero(wrong) * 2 > len(fields):
    line = 1 + int(np.argmax(wrong))
    raise ValueError(
        f'{path} does not look like a Taobao UserBehavior CSV: '
        f'{np.count_nonzero(wrong)} of {len(fields)} lines do not have '
        f'{len(COLUMN_NAMES)} comma-separated fields, the first being line {line} '
        f'({int(fields[np.argmax(wrong)])} fields). Expected columns: '
        f'{",".join(COLUMN_NAMES)} (no header).')


def _find_duplicates(columns: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
  """Marks [rows] that repeat an earlier row exactly.

  Args:
    columns: column name -> [rows] values in file order.
    order: [rows] a stable sort of the rows by (user, timestamp).
  """
  # Equal rows share (user, timestamp), so only rows in such a run need a full
  # comparison; the stable order keeps each run in file order for keep='first'.
  user, timestamp = columns['user_id'][order], columns['timestamp'][order]
  same_key = (user[1:] == user[:-1]) & (timestamp[1:] == timestamp[:-1])
  in_run = np.zeros(len(order), dtype=bool)
  in_run[1:] |= same_key
  in_run[:-1] |= same_key
  candidates = order[in_run]

  frame = pd.DataFrame({name: values[candidates] for name, values in columns.items()})
  repeated = np.zeros(len(order), dtype=bool)
  repeated[candidates[frame.duplicated(keep='first').to_numpy(dtype=bool)]] = True
  return repeated


def _count_unsorted(user: np.ndarray, timestamp: np.ndarray) -> int:
  """Rows that come before their predecessor in (user, timestamp) order."""
  earlier_user = user[1:] < user[:-1]
  earlier_time = (user[1:] == user[:-1]) & (timestamp[1:] < timestamp[:-1])
  return int(np.count_nonzero(earlier_user | earlier_time))


def load_taobao(
    path: str | os.PathLike,
    *,
    time_range: tuple[int, int] | None = DEFAULT_TAOBAO_RANGE,
    max_rows: int | None = None,
) -> tuple[events.EventTable, LoadReport]:
  """Reads a Taobao UserBehavior CSV.

  Args:
    path: the CSV file.
    time_range: [start, end) in Unix seconds; rows outside are dropped. None keeps all.
    max_rows: read at most this many lines from the start of the file.

  Returns:
    The events sorted by (user, timestamp) with kind 0, and the report of the load.

  Raises:
    FileNotFoundError: if `path` does not exist.
    ValueError: if the file is empty or most of its lines do not have five fields.
  """
  path = os.fspath(path)
  if max_rows is not None and max_rows < 1:
    raise ValueError(f'max_rows must be positive or None, got {max_rows}.')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Taobao UserBehavior file not found: {path}')
  report = LoadReport(path=os.path.basename(path))

  all_fields, parts, valid_parts = [], [], []
  for block in _line_blocks(path, max_rows):
    fields, columns, valid = _parse_block(block)
    if not all_fields:
      # Fail before reading the rest of a large file in some other format.
      _check_column_count(path, fields)
    all_fields.append(fields)
    parts.append(columns)
    valid_parts.append(valid)
  if not all_fields:
    raise ValueError(f'{path} is empty: expected CSV lines with columns '
                     f'{",".join(COLUMN_NAMES)}.')

  fields = np.concatenate(all_fields)
  _check_column_count(path, fields)
  report.rows_read = len(fields)
  columns = {name: np.concatenate([part[name] for part in parts])
             for name in COLUMN_NAMES}
  valid = np.concatenate(valid_parts)
  report.dropped['malformed'] = int(np.count_nonzero(fields != len(COLUMN_NAMES)) +
                                    np.count_nonzero(~valid))

  # Each check sees only the rows that passed the previous ones, so no row is
  # counted under two reasons.
  keep = valid.copy()
  known = columns['behavior_type'] >= 0
  report.dropped['unknown_event_type'] = int(np.count_nonzero(keep & ~known))
  keep &= known

  if time_range is not None:
    start, end = time_range
    inside = (columns['timestamp'] >= start) & (columns['timestamp'] < end)
    report.dropped['timestamp_out_of_range'] = int(np.count_nonzero(keep & ~inside))
    keep &= inside

  columns = {name: values[keep] for name, values in columns.items()}
  order = np.lexsort((columns['timestamp'], columns['user_id']))
  repeated = _find_duplicates(columns, order)
  report.dropped['duplicate'] = int(np.count_nonzero(repeated))
  report.repaired['unsorted'] = _count_unsorted(columns['user_id'][~repeated],
                                                columns['timestamp'][~repeated])

  order = order[~repeated[order]]
  table = events.EventTable.from_columns(
      user=columns['user_id'][order], timestamp=columns['timestamp'][order],
      event_type=columns['behavior_type'][order], item=columns['item_id'][order],
      category=columns['category_id'][order])
  report.rows_kept = len(table)
  if not len(table):
    logging.warning('No usable rows in %s.', path)
  report.log()
  return table, report
