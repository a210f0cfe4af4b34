r"""Data-layer throughput: load -> sessionize -> window on a generated Taobao file.

  python -m benchmarks.data_throughput --events=10000000

Writes a Taobao UserBehavior-format CSV of `--events` rows (once, under
`--data_dir`; a child process writes it so its memory does not count), then times
in this process: loading it (parse, check, sort, deduplicate), cutting sessions,
fitting the vocabulary and cutting windows. Prints events per second for each step
and end to end, and the peak resident memory above what the process held before
loading, next to the size of the events as an int32 table (5 columns x 4 bytes).
Targets on a 2-core machine: >= 2M events/s end to end, peak < 3x the int32 table.

The generated users have geometric history lengths (mean 100 events) in sessions of
about 6 events (as in the real slice), Zipf-like item popularity and the slice's
event mix; each user's rows are contiguous and in time order, as in the published
file. Per-session windows (`--unit=session`) want a shorter `--window_length`.
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from seqad.data import sessions
from seqad.data import tabular
from seqad.data import taobao
from seqad.data import windows

_EVENTS = flags.DEFINE_integer('events', 10_000_000, 'Rows of the generated file.')
_DATA_DIR = flags.DEFINE_string('data_dir', '/tmp/seqad_data_throughput',
                                'Where the generated file is kept between runs.')
_LENGTH = flags.DEFINE_integer('window_length', 64, 'Events per window.')
_UNIT = flags.DEFINE_enum('unit', 'user', sessions.UNITS,
                          'Windows per user history or per session.')
_OUTPUT = flags.DEFINE_string('output', '', 'Also write the numbers to this JSON file.')
_GENERATE_ONLY = flags.DEFINE_bool('generate_only', False,
                                   'Only write the file (used by the child process).')

# Shares of pv, cart, fav, buy in the real slice (its README).
_EVENT_MIX = (0.898, 0.0533, 0.0279, 0.0208)
_BEHAVIOURS = ('pv', 'cart', 'fav', 'buy')
# The real file's id ranges and sizes, and its share of rows before its span.
_MAX_USER_ID = 1_018_011
_MAX_ITEM_ID = 5_163_070
_NUM_ITEMS = 4_162_024
_NUM_CATEGORIES = 9_439
_STRAY_SHARE = 35 / 84_287


def generate(path: str, num_events: int, seed: int = 0) -> None:
  """Writes `num_events` Taobao-format rows to `path` (vectorised, via pyarrow)."""
  import pyarrow as pa  # Only the generator needs these.
  import pyarrow.csv as pa_csv

  rng = np.random.default_rng(seed)
  lengths = rng.geometric(1 / 100, size=num_events // 50 + 1)
  lengths = lengths[np.cumsum(lengths) <= num_events]
  lengths = np.append(lengths, num_events - lengths.sum())
  lengths = lengths[lengths > 0]
  # Ids as wide as the real file's (users to ~1M, items and categories to ~5.2M).
  users = rng.choice(max(_MAX_USER_ID, 2 * len(lengths)), size=len(lengths),
                     replace=False) + 1
  owner = np.repeat(np.arange(len(lengths)), lengths)

  # Sessions of about 6 events a minute or two apart, hours between sessions.
  new_session = rng.random(num_events) < 1 / 6
  gaps = np.where(new_session, rng.integers(3600, 8 * 3600, num_events),
                  1 + rng.exponential(90, num_events).astype(np.int64))
  first = np.cumsum(lengths) - lengths
  gaps[first] = 0
  offset = np.cumsum(gaps)
  offset -= np.repeat(offset[first], lengths)
  # Histories longer than the dataset's 9 days are squeezed into them.
  span = np.maximum(offset[np.cumsum(lengths) - 1], 1)
  squeeze = np.minimum(1.0, (9 * 86400 - 1) / span)
  offset = (offset * squeeze[owner]).astype(np.int64)
  room = 9 * 86400 - 1 - np.minimum(span, 9 * 86400 - 1)
  timestamp = (taobao.DEFAULT_TAOBAO_RANGE[0] + offset +
               (rng.random(len(lengths)) * room).astype(np.int64)[owner])
  # Like the real file, a few rows (0.04%) lie weeks before the dataset's span.
  stray = rng.random(num_events) < _STRAY_SHARE
  timestamp[stray] -= rng.integers(20 * 86400, 75 * 86400, int(stray.sum()))
  # Zipf-like popularity over random item ids; each item has one category.
  rank = (rng.zipf(1.3, num_events) - 1) % _NUM_ITEMS
  item_ids = rng.choice(_MAX_ITEM_ID, size=_NUM_ITEMS, replace=False) + 1
  category_ids = rng.choice(_MAX_ITEM_ID, size=_NUM_CATEGORIES, replace=False) + 1
  item_category = category_ids[rng.integers(0, _NUM_CATEGORIES, _NUM_ITEMS)]
  behaviour = rng.choice(len(_BEHAVIOURS), size=num_events, p=_EVENT_MIX)
  table = pa.table({
      'user': users[owner], 'item': item_ids[rank], 'category': item_category[rank],
      'behaviour': pa.DictionaryArray.from_arrays(
          pa.array(behaviour.astype(np.int32)), pa.array(_BEHAVIOURS)),
      'timestamp': timestamp})
  temporary = path + '.tmp'
  pa_csv.write_csv(table, temporary, write_options=pa_csv.WriteOptions(
      include_header=False, quoting_style='none'))
  os.replace(temporary, path)


def _rss_bytes() -> int:
  with open('/proc/self/statm') as stream:
    return int(stream.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _peak_rss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(path: str, length: int, unit: str) -> dict:
  """Times each step on the file; returns the numbers."""
  baseline = _rss_bytes()
  steps, cpu = {}, {}
  start, cpu_start = time.perf_counter(), time.process_time()
  loaded = tabular.read_events(path, taobao.taobao_format())
  steps['load_s'] = time.perf_counter() - start
  cpu['load_cpu_s'] = time.process_time() - cpu_start
  table = loaded.table

  mark, cpu_mark = time.perf_counter(), time.process_time()
  starts = sessions.sequence_starts(table, unit)
  steps['sessionize_s'] = time.perf_counter() - mark
  cpu['sessionize_cpu_s'] = time.process_time() - cpu_mark

  mark, cpu_mark = time.perf_counter(), time.process_time()
  vocab = windows.fit_vocabulary(table, max_categories=128, min_count=5)
  result = windows.make_windows(table, vocab, length=length, min_events=1, unit=unit)
  steps['window_s'] = time.perf_counter() - mark
  cpu['window_cpu_s'] = time.process_time() - cpu_mark
  total = time.perf_counter() - start
  total_cpu = time.process_time() - cpu_start

  rows = loaded.report.rows_read
  int32_table = rows * 5 * 4
  peak = _peak_rss_bytes() - baseline
  window_bytes = sum(v.nbytes for v in result.tokens.values()) + result.mask.nbytes + \
      result.event_kind.nbytes
  return {
      'events': rows,
      'sequences': int(starts.sum()),
      'windows': len(result),
      **{name: round(seconds, 3) for name, seconds in steps.items()},
      **{name: round(seconds, 3) for name, seconds in cpu.items()},
      'total_s': round(total, 3),
      'total_cpu_s': round(total_cpu, 3),
      'events_per_s': rows / total,
      'events_per_cpu_s': rows / total_cpu,
      'load_events_per_s': rows / steps['load_s'],
      'window_events_per_s': rows / steps['window_s'],
      'peak_rss_above_baseline_mb': peak / 2**20,
      'peak_rss_mb': _peak_rss_bytes() / 2**20,
      'baseline_rss_mb': baseline / 2**20,
      'int32_table_mb': int32_table / 2**20,
      'peak_over_int32_table': peak / int32_table,
      'event_table_mb': sum(c.nbytes for c in table.columns().values()) / 2**20,
      'windows_mb': window_bytes / 2**20,
  }


def main(argv):
  del argv
  os.makedirs(_DATA_DIR.value, exist_ok=True)
  path = os.path.join(_DATA_DIR.value, f'taobao_{_EVENTS.value}.csv')
  if _GENERATE_ONLY.value:
    generate(path, _EVENTS.value)
    return
  if not os.path.exists(path):
    logging.info('Writing %d events to %s.', _EVENTS.value, path)
    subprocess.run([sys.executable, '-m', 'benchmarks.data_throughput',
                    f'--events={_EVENTS.value}', f'--data_dir={_DATA_DIR.value}',
                    '--generate_only'], check=True)

  numbers = measure(path, _LENGTH.value, _UNIT.value)
  print(f"{numbers['events']:,} events -> {numbers['sequences']:,} {_UNIT.value}s -> "
        f"{numbers['windows']:,} windows of {_LENGTH.value}")
  print(f"load {numbers['load_s']:.2f} s, sessionize {numbers['sessionize_s']:.2f} s, "
        f"window {numbers['window_s']:.2f} s; end to end {numbers['total_s']:.2f} s = "
        f"{numbers['events_per_s'] / 1e6:.2f}M events/s (target >= 2M)")
  # CPU seconds do not grow when other processes share the cores.
  print(f"CPU time {numbers['total_cpu_s']:.2f} s (load {numbers['load_cpu_s']:.2f}, "
        f"window {numbers['window_cpu_s']:.2f}) = "
        f"{numbers['events_per_cpu_s'] / 1e6:.2f}M events per CPU second")
  print(f"peak memory {numbers['peak_rss_above_baseline_mb']:.0f} MiB above the "
        f"{numbers['baseline_rss_mb']:.0f} MiB baseline = "
        f"{numbers['peak_over_int32_table']:.2f}x the int32 event table "
        f"({numbers['int32_table_mb']:.0f} MiB; target < 3x); event table "
        f"{numbers['event_table_mb']:.0f} MiB, windows {numbers['windows_mb']:.0f} MiB")
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as stream:
      json.dump(numbers, stream, indent=2)


if __name__ == '__main__':
  app.run(main)
