"""Loads DIGINETICA (CIKM Cup 2016) `train-item-views.csv` into an `EventTable`.

The file is `;`-separated with the header

  session_id;user_id;item_id;timeframe;eventdate

where `timeframe` is milliseconds since the start of the session and
`eventdate` the session's date (YYYY-MM-DD). Most `user_id`s are `NA`, so the
sequence unit is the session: the table's `user` column holds the session id.
Every row is an item view; the file has no categories (they live in a separate
product-categories file), so `category` is 0 throughout. Timestamps are the
date's midnight UTC plus the timeframe, in seconds.

Rows within a session are not in time order in the published file: they are
sorted, and the moved rows counted as 'unsorted' repairs. Rows with a field that
is not a number or date are dropped as 'malformed', exact duplicates as
'duplicate'; every count is in the returned `LoadReport`.
"""

import os

import numpy as np
import pandas as pd

from seqad.data import events
from seqad.data import taobao

COLUMN_NAMES = ('session_id', 'user_id', 'item_id', 'timeframe', 'eventdate')
DROP_REASONS = ('malformed', 'duplicate')


def _check_header(path: str) -> None:
  with open(path, encoding='utf-8', errors='replace') as stream:
    header = stream.readline().strip()
  if not header:
    raise ValueError(f'{path}: the file is empty; expected a DIGINETICA header line.')
  if header.split(';') != list(COLUMN_NAMES):
    raise ValueError(f'{path}, line 1: header {header!r} is not the DIGINETICA '
                     f"train-item-views header {';'.join(COLUMN_NAMES)!r}.")


def load_diginetica(path: str | os.PathLike,
                    max_rows: int | None = None) -> tuple[events.EventTable,
                                                          taobao.LoadReport]:
  """Reads a DIGINETICA train-item-views file; see the module docstring.

  Raises:
    FileNotFoundError: if `path` does not exist.
    ValueError: for an empty file or a wrong header (which also catches another
      separator), naming the file and line.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'DIGINETICA file not found: {path}')
  _check_header(path)
  # A spare column catches one surplus field; lines with even more fields go
  # to the callback. Both count as malformed, as do lines with too few fields
  # (their missing fields are empty and fail parsing below).
  # TODO: the python engine is what allows the callback; a chunked C-engine
  # reader for full-size files belongs with the scale work on the data layer.
  long_lines = []
  frame = pd.read_csv(path, sep=';', header=None, skiprows=1, dtype=str,
                      names=COLUMN_NAMES + ('surplus',), keep_default_na=False,
                      nrows=max_rows, engine='python',
                      on_bad_lines=lambda fields: long_lines.append(len(fields)))
  surplus = (frame['surplus'].fillna('') != '').to_numpy()

  report = taobao.LoadReport(path=os.path.basename(path),
                             rows_read=len(frame) + len(long_lines),
                             dropped=dict.fromkeys(DROP_REASONS, 0))

  # Parse whole columns; anything unparseable becomes NaN / NaT and is dropped.
  session = pd.to_numeric(frame['session_id'], errors='coerce')
  item = pd.to_numeric(frame['item_id'], errors='coerce')
  timeframe = pd.to_numeric(frame['timeframe'], errors='coerce')
  date = pd.to_datetime(frame['eventdate'], format='%Y-%m-%d', errors='coerce')
  valid = (session.notna() & item.notna() & timeframe.notna() & date.notna() &
           (timeframe >= 0)).to_numpy() & ~surplus
  report.dropped['malformed'] = int(np.sum(~valid)) + len(long_lines)

  midnight = (date[valid].to_numpy().astype('datetime64[s]').astype(np.int64))
  columns = pd.DataFrame({
      'user': session[valid].to_numpy().astype(np.int64),
      'timestamp': midnight + timeframe[valid].to_numpy().astype(np.int64) // 1000,
      'item': item[valid].to_numpy().astype(np.int64),
      'timeframe': timeframe[valid].to_numpy().astype(np.int64),
  })
  duplicate = columns.duplicated().to_numpy()
  report.dropped['duplicate'] = int(duplicate.sum())
  columns = columns[~duplicate]

  # Rows that come before their predecessor in (session, time) order.
  user, timestamp = columns['user'].to_numpy(), columns['timestamp'].to_numpy()
  earlier = (user[1:] < user[:-1]) | ((user[1:] == user[:-1]) &
                                      (timestamp[1:] < timestamp[:-1]))
  report.repaired['unsorted'] = int(earlier.sum())

  table = events.EventTable.from_columns(
      user=user, timestamp=timestamp,
      event_type=np.full(len(user), events.VIEW), item=columns['item'].to_numpy(),
      category=np.zeros(len(user), np.int64)).sort()
  report.rows_kept = len(table)
  report.log()
  return table, report
