"""Loads DIGINETICA (CIKM Cup 2016) `train-item-views.csv` into an `EventTable`.

The file is `;`-separated with the header

  session_id;user_id;item_id;timeframe;eventdate

where `timeframe` is milliseconds since the start of the session and
`eventdate` the session's date (YYYY-MM-DD). Most `user_id`s are `NA`, so the
sequence unit is the file's session: the table's `user` column holds the session
id. Every row is an item view; the file has no categories (they live in a separate
product-categories file), so `category` is 0 throughout. Timestamps are the
date's midnight UTC plus the timeframe, in whole seconds.

Rows within a session are not in time order in the published file: they are
sorted, and the moved rows counted as 'unsorted' repairs. Every dropped row is
counted by reason in the returned `LoadReport` (see `seqad.data.tabular`).
"""

import os

from seqad.data import events
from seqad.data import tabular

COLUMN_NAMES = ('session_id', 'user_id', 'item_id', 'timeframe', 'eventdate')

DIGINETICA_FORMAT = tabular.Format(
    name='DIGINETICA train-item-views',
    columns={'session': 'session_id', 'item': 'item_id', 'time': 'eventdate',
             'time_offset': 'timeframe'},
    header=True, delimiter=';', time_unit='date', time_offset_unit='ms',
    default_event='view')


def load_diginetica(path: str | os.PathLike, max_rows: int | None = None
                    ) -> tuple[events.EventTable, tabular.LoadReport]:
  """Reads a DIGINETICA train-item-views file; see the module docstring.

  Raises:
    FileNotFoundError: if `path` does not exist.
    ValueError: for an empty file, a header without the expected columns (which
      also catches another separator) or a mostly malformed file, naming the file
      and line.
  """
  loaded = tabular.read_events(path, DIGINETICA_FORMAT, max_rows=max_rows)
  return loaded.table, loaded.report
