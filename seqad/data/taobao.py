"""Loads the Taobao UserBehavior CSV into an `EventTable`, accounting for every row.

The file has no header and five comma-separated columns:

  user_id, item_id, category_id, behavior_type, timestamp

with behaviour types `pv` (page view, mapped to 'view'), `cart`, `fav` and `buy`, and
Unix-second timestamps. Rows that cannot be used are dropped and counted per reason in
a `LoadReport` (see `seqad.data.tabular`); nothing is dropped silently. The stray
2017-09 rows of the published file fall outside `DEFAULT_TAOBAO_RANGE` and are
counted as 'timestamp_out_of_range'.
"""

import datetime
import os

from seqad.data import events
from seqad.data import tabular

COLUMN_NAMES = ('user_id', 'item_id', 'category_id', 'behavior_type', 'timestamp')

# The file's behaviour names, in the order of `events.EVENT_TYPES`.
BEHAVIOR_NAMES = ('pv', 'cart', 'fav', 'buy')

DROP_REASONS = tabular.DROP_REASONS
LoadReport = tabular.LoadReport

_CHINA = datetime.timezone(datetime.timedelta(hours=8))

# The documented span of the dataset, 2017-11-25 to 2017-12-03 China time, as a
# half-open [start, end) range of Unix seconds.
DEFAULT_TAOBAO_RANGE = (
    int(datetime.datetime(2017, 11, 25, tzinfo=_CHINA).timestamp()),
    int(datetime.datetime(2017, 12, 4, tzinfo=_CHINA).timestamp()),
)


def taobao_format(time_range: tuple[int, int] | None = DEFAULT_TAOBAO_RANGE
                  ) -> tabular.Format:
  """The UserBehavior layout as a `tabular.Format`."""
  return tabular.Format(
      name='Taobao UserBehavior',
      columns={'user': 'user_id', 'item': 'item_id', 'category': 'category_id',
               'event': 'behavior_type', 'time': 'timestamp'},
      header=False, names=COLUMN_NAMES, delimiter=',', time_unit='s',
      event_map=dict(zip(BEHAVIOR_NAMES, events.EVENT_TYPES)),
      time_range=time_range)


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
  loaded = tabular.read_events(path, taobao_format(time_range), max_rows=max_rows)
  return loaded.table, loaded.report
