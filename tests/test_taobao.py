"""Tests of the Taobao UserBehavior loader."""

import datetime
from pathlib import Path

import numpy as np
import pytest

from seqad.data import events
from seqad.data import tabular
from seqad.data import taobao

SLICE = (Path(__file__).parents[1] / '..' / 'shared' / 'data' / 'taobao_userbehavior' /
         'UserBehavior_head_814users.csv')

T0 = taobao.DEFAULT_TAOBAO_RANGE[0] + 3600

# One line per case; the last line has no final newline on purpose.
FIXTURE_LINES = [
    f'1,10,100,pv,{T0 + 10}',
    f'1,11,100,cart,{T0 + 20}',
    f'2,12,200,buy,{T0 + 5}',
    f'1,13,101,fav,{T0 + 15}',       # user 1 again after user 2: unsorted
    f'x1,14,100,pv,{T0}',            # malformed: non-integer user
    f'2,15,200,click,{T0 + 7}',      # unknown event type
    f'2,12,200,buy,{T0 + 5}',        # duplicate of line 3
    '3,16,300,pv,1505000000',        # 2017-09: out of range
    f'3,17,300,pv,{T0 + 100}',
    '3,18,300,pv',                   # malformed: 4 fields
    f'3,18,300,pv,{T0 + 1},9',       # malformed: 6 fields
    '3,19,300,pv,15e8x',             # malformed: a timestamp that is not a number
    '',                              # malformed: blank line
    f'2,20,201,pv,{T0 + 1}',         # user 2 after user 3: unsorted
]

# (user, item, category, event_type, timestamp), sorted by (user, timestamp).
EXPECTED_ROWS = [
    (1, 10, 100, events.VIEW, T0 + 10),
    (1, 13, 101, events.FAV, T0 + 15),
    (1, 11, 100, events.CART, T0 + 20),
    (2, 20, 201, events.VIEW, T0 + 1),
    (2, 12, 200, events.BUY, T0 + 5),
    (3, 17, 300, events.VIEW, T0 + 100),
]


def _write(tmp_path, text, name='behavior.csv'):
  path = tmp_path / name
  path.write_text(text)
  return path


def _rows(table):
  return list(zip(table.user.tolist(), table.item.tolist(), table.category.tolist(),
                  table.event_type.tolist(), table.timestamp.tolist()))


def test_fixture_counts_every_reason_and_keeps_exact_rows(tmp_path):
  path = _write(tmp_path, '\n'.join(FIXTURE_LINES))
  table, report = taobao.load_taobao(path)

  assert _rows(table) == EXPECTED_ROWS
  assert np.all(table.kind == 0)
  assert table.is_sorted()
  assert report.path == 'behavior.csv'
  assert report.rows_read == len(FIXTURE_LINES)
  assert report.rows_kept == len(EXPECTED_ROWS)
  assert report.dropped == {'malformed': 5, 'unknown_event_type': 1,
                            'bad_timestamp': 0, 'timestamp_out_of_range': 1,
                            'duplicate': 1}
  assert report.first_bad_line['malformed'] == 'behavior.csv:5'
  assert report.first_bad_line['timestamp_out_of_range'] == 'behavior.csv:8'
  assert report.repaired == {'unsorted': 2}
  assert report.rows_read - report.rows_kept == sum(report.dropped.values())
  assert report.to_dict()['dropped']['duplicate'] == 1
  report.log()


def test_small_blocks_and_windows_line_endings_give_the_same_result(tmp_path,
                                                                    monkeypatch):
  path = _write(tmp_path, '\r\n'.join(FIXTURE_LINES) + '\r\n')
  monkeypatch.setattr(tabular, '_BLOCK_BYTES', 64)
  table, report = taobao.load_taobao(path)
  assert _rows(table) == EXPECTED_ROWS
  assert report.dropped['malformed'] == 5


def test_time_range_none_keeps_early_rows(tmp_path):
  path = _write(tmp_path, '\n'.join(FIXTURE_LINES))
  table, report = taobao.load_taobao(path, time_range=None)
  assert report.dropped['timestamp_out_of_range'] == 0
  assert 1505000000 in table.timestamp
  assert len(table) == len(EXPECTED_ROWS) + 1


@pytest.mark.parametrize('block_bytes', [64, 1 << 20])
def test_max_rows_reads_a_prefix(tmp_path, monkeypatch, block_bytes):
  path = _write(tmp_path, '\n'.join(FIXTURE_LINES))
  monkeypatch.setattr(tabular, '_BLOCK_BYTES', block_bytes)
  table, report = taobao.load_taobao(path, max_rows=3)
  assert report.rows_read == 3
  assert _rows(table) == [(1, 10, 100, 0, T0 + 10), (1, 11, 100, 1, T0 + 20),
                          (2, 12, 200, 3, T0 + 5)]


def test_equal_timestamps_keep_file_order(tmp_path):
  path = _write(tmp_path, f'5,2,1,pv,{T0}\n5,1,1,cart,{T0}\n4,3,1,pv,{T0}\n'
                          f'5,2,1,pv,{T0}\n')
  table, report = taobao.load_taobao(path)
  assert table.item.tolist() == [3, 2, 1]
  assert report.dropped['duplicate'] == 1
  assert report.repaired['unsorted'] == 1


def test_missing_file_raises_file_not_found(tmp_path):
  missing = tmp_path / 'nope.csv'
  with pytest.raises(FileNotFoundError, match='nope.csv'):
    taobao.load_taobao(missing)


@pytest.mark.parametrize('text', [
    '1,10,100,pv\n2,11,100,buy\n3,12,100,cart\n',
    f'1;10;100;pv;{T0}\n2;11;100;buy;{T0}\n',
])
def test_wrong_column_count_raises_naming_the_file(tmp_path, text):
  path = _write(tmp_path, text, name='wrong_format.csv')
  with pytest.raises(ValueError, match=r'wrong_format\.csv.*line 1') as error:
    taobao.load_taobao(path)
  assert 'user_id,item_id,category_id,behavior_type,timestamp' in str(error.value)


def test_empty_file_raises(tmp_path):
  path = _write(tmp_path, '', name='empty.csv')
  with pytest.raises(ValueError, match='empty.csv: the file is empty'):
    taobao.load_taobao(path)


@pytest.fixture(scope='module')
def real_slice():
  if not SLICE.exists():
    pytest.skip(f'Taobao slice not found at {SLICE} (../shared is not beside the repo).')
  return SLICE


def test_real_slice_matches_its_readme(real_slice):
  table, report = taobao.load_taobao(real_slice)
  assert report.rows_read == 84_287
  assert report.dropped == {'malformed': 0, 'unknown_event_type': 0, 'bad_timestamp': 0,
                            'timestamp_out_of_range': 35, 'duplicate': 0}
  assert report.rows_kept == len(table) == 84_287 - 35
  assert len(table.users()) == 814
  assert table.is_sorted()

  china = datetime.timezone(datetime.timedelta(hours=8))
  first = datetime.datetime.fromtimestamp(int(table.timestamp.min()), china)
  last = datetime.datetime.fromtimestamp(int(table.timestamp.max()), china)
  assert first == datetime.datetime(2017, 11, 25, 0, 0, 17, tzinfo=china)
  assert last == datetime.datetime(2017, 12, 3, 23, 59, 23, tzinfo=china)


def test_real_slice_unfiltered_event_mix(real_slice):
  table, report = taobao.load_taobao(real_slice, time_range=None)
  assert report.rows_kept == 84_287
  assert np.bincount(table.event_type, minlength=4).tolist() == [75_693, 4_494,
                                                                  2_351, 1_749]
  assert len(np.unique(table.item)) == 55_233
  assert len(np.unique(table.category)) == 2_911
  assert len(np.unique(table.user[table.event_type == events.BUY])) == 558

  early = table.timestamp < taobao.DEFAULT_TAOBAO_RANGE[0]
  assert np.count_nonzero(early) == 35
  assert len(np.unique(table.user[early])) == 32
  china = datetime.timezone(datetime.timedelta(hours=8))
  earliest = datetime.datetime.fromtimestamp(int(table.timestamp.min()), china)
  assert earliest.date() == datetime.date(2017, 9, 11)
