"""Loads the RetailRocket `events.csv` (Kaggle "Retailrocket recommender system dataset").

The file has the header

  timestamp,visitorid,event,itemid,transactionid

with Unix-millisecond timestamps and events `view`, `addtocart` and `transaction`,
which map onto 'view', 'cart' and 'buy'. The visitor is the user. The file has no
categories (they are in the separate item-properties files), so `category` is 0;
`transactionid` is returned as an extra column (NaN where empty).
"""

import os

from seqad.data import tabular

RETAILROCKET_FORMAT = tabular.Format(
    name='RetailRocket events',
    columns={'user': 'visitorid', 'time': 'timestamp', 'event': 'event',
             'item': 'itemid'},
    header=True, delimiter=',', time_unit='ms',
    event_map={'view': 'view', 'addtocart': 'cart', 'transaction': 'buy'},
    extras=('transactionid',))


def load_retailrocket(path: str | os.PathLike, max_rows: int | None = None
                      ) -> tabular.Loaded:
  """Reads a RetailRocket events.csv; rows with other event names are dropped.

  Raises:
    FileNotFoundError, ValueError: as `tabular.read_events`.
  """
  return tabular.read_events(path, RETAILROCKET_FORMAT, max_rows=max_rows)
