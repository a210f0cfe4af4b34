"""Loads YOOCHOOSE (RecSys Challenge 2015) click and buy files.

`yoochoose-clicks.dat` has no header and the columns

  session, timestamp, item, category

with ISO-8601 UTC timestamps ('2014-04-07T10:51:09.277Z'); every row is a 'view'.
The category is a string: '0' (unknown), 'S' (special offer), 1-12, or a brand id,
so it is hashed to an int64 id. `yoochoose-buys.dat` has the columns

  session, timestamp, item, price, quantity

and every row is a 'buy'; price and quantity are kept as extra columns. The
session is the sequence unit (the data has no user ids).
"""

import os

import numpy as np

from seqad.data import events
from seqad.data import tabular

CLICK_COLUMNS = ('session', 'timestamp', 'item', 'category')
BUY_COLUMNS = ('session', 'timestamp', 'item', 'price', 'quantity')

CLICKS_FORMAT = tabular.Format(
    name='YOOCHOOSE clicks',
    columns={'session': 'session', 'time': 'timestamp', 'item': 'item',
             'category': 'category'},
    header=False, names=CLICK_COLUMNS, delimiter=',', time_unit='iso',
    default_event='view', string_ids=('category',))

BUYS_FORMAT = tabular.Format(
    name='YOOCHOOSE buys',
    columns={'session': 'session', 'time': 'timestamp', 'item': 'item'},
    header=False, names=BUY_COLUMNS, delimiter=',', time_unit='iso',
    default_event='buy', extras=('price', 'quantity'))


def load_yoochoose(clicks_path: str | os.PathLike,
                   buys_path: str | os.PathLike | None = None,
                   max_rows: int | None = None) -> tabular.Loaded:
  """Reads the clicks (and buys, if given) into one table sorted by (session, time).

  A buy takes the category of the session's click on the same item where there is
  one, else 0. The extras 'price' and 'quantity' are NaN on click rows.

  Raises:
    FileNotFoundError, ValueError: as `tabular.read_events`.
  """
  clicks = tabular.read_events(clicks_path, CLICKS_FORMAT, max_rows=max_rows)
  if buys_path is None:
    return clicks
  buys = tabular.read_events(buys_path, BUYS_FORMAT, max_rows=max_rows)
  category = _click_category(clicks.table, buys.table)
  buy_table = events.EventTable.from_columns(**{**buys.table.columns(),
                                                'category': category})

  # Clicks before buys at equal (session, time): the stable sort keeps that order.
  table = events.EventTable.concatenate([clicks.table, buy_table])
  order = np.lexsort((table.timestamp, table.user))
  table = table.take(order)
  extras = {name: np.concatenate([np.full(len(clicks.table), np.nan),
                                  buys.extras[name]])[order]
            for name in BUYS_FORMAT.extras}

  report = clicks.report
  merged = tabular.LoadReport(
      path=f'{report.path}+{buys.report.path}',
      rows_read=report.rows_read + buys.report.rows_read, rows_kept=len(table),
      dropped={k: report.dropped[k] + buys.report.dropped[k] for k in report.dropped},
      repaired={k: report.repaired[k] + buys.report.repaired[k]
                for k in report.repaired},
      first_bad_line={**buys.report.first_bad_line, **report.first_bad_line})
  return tabular.Loaded(table=table, report=merged, extras=extras)


def _click_category(clicks: events.EventTable, buys: events.EventTable) -> np.ndarray:
  """[buys] int64 category of each buy's (session, item) among the clicks, else 0."""
  keys = np.stack([clicks.user, clicks.item], axis=1, dtype=np.int64)
  keys, first = np.unique(keys, axis=0, return_index=True)
  queries = np.stack([buys.user, buys.item], axis=1, dtype=np.int64)
  # Row-wise search through a structured view of the sorted (session, item) pairs.
  pair = np.dtype([('session', np.int64), ('item', np.int64)])
  sorted_keys = np.ascontiguousarray(keys).view(pair).ravel()
  wanted = np.ascontiguousarray(queries).view(pair).ravel()
  index = np.searchsorted(sorted_keys, wanted)
  found = index < len(sorted_keys)
  found[found] = sorted_keys[index[found]] == wanted[found]
  category = np.zeros(len(buys), dtype=np.int64)
  category[found] = clicks.category[first[index[found]]]
  return category
