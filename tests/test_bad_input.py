"""Bad input: one clear line naming the file, line and problem, or a counted repair."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqad.data import tabular
from seqad.data import taobao

FMT = tabular.Format(name='shop log', columns={'user': 'user', 'time': 'time',
                                               'event': 'event', 'item': 'item'},
                     time_unit='s', event_map={'view': 'view', 'buy': 'buy'})
HEADER = 'user,time,event,item\n'
GOOD = ''.join(f'{u},{1700000000 + u},view,{u}\n' for u in range(1, 9))


def _write(tmp_path, text, name='log.csv'):
  path = tmp_path / name
  path.write_text(text)
  return path


def _error(tmp_path, text, fmt=FMT, name='log.csv'):
  with pytest.raises(ValueError) as error:
    tabular.read_events(_write(tmp_path, text, name), fmt)
  message = str(error.value)
  assert '\n' not in message and name in message
  return message


def test_wrong_delimiter_names_line_one(tmp_path):
  message = _error(tmp_path, HEADER.replace(',', ';') + GOOD.replace(',', ';'))
  assert 'line 1' in message and 'wrong delimiter?' in message


def test_mostly_wrong_column_count_is_an_error_a_few_are_counted(tmp_path):
  text = HEADER + '1,1700000000,view\n2,1700000000,view,2,extra\n3,1700000000,view\n'
  message = _error(tmp_path, text)
  assert 'line 2 has the wrong number of fields' in message

  loaded = tabular.read_events(_write(tmp_path, HEADER + GOOD + '9,1700000000\n'), FMT)
  assert loaded.report.dropped['malformed'] == 1
  assert loaded.report.first_bad_line['malformed'] == 'log.csv:10'
  assert loaded.report.rows_read == 9 and loaded.report.rows_kept == 8


def test_non_numeric_ids_are_counted_or_an_error_when_most_are(tmp_path):
  loaded = tabular.read_events(
      _write(tmp_path, HEADER + GOOD + 'u9,1700000000,view,9\n3,1700000000,view,x\n'),
      FMT)
  assert loaded.report.dropped['malformed'] == 2
  assert loaded.report.first_bad_line['malformed'] == 'log.csv:10'
  message = _error(tmp_path, HEADER + 'a,1,view,1\nb,1,view,1\n3,1,view,1\n')
  assert 'line 2 has a missing or unparseable value' in message


def test_non_numeric_id_in_a_later_block_rereads_the_file_as_text(tmp_path, monkeypatch):
  text = HEADER + GOOD * 20 + 'u9,1700000000,view,9\n'
  expected = tabular.read_events(_write(tmp_path, text), FMT)
  monkeypatch.setattr(tabular, '_BLOCK_BYTES', 256)
  small_blocks = tabular.read_events(_write(tmp_path, text), FMT)
  assert small_blocks.report.to_dict() == expected.report.to_dict()
  assert small_blocks.report.dropped['malformed'] == 1
  assert small_blocks.report.first_bad_line['malformed'] == f'log.csv:{2 + 160}'


def test_empty_file_and_header_only(tmp_path):
  assert 'the file is empty' in _error(tmp_path, '')
  assert 'no data rows' in _error(tmp_path, HEADER, name='header.csv')


def test_nan_and_negative_timestamps_are_counted_with_their_line(tmp_path):
  text = HEADER + GOOD + '9,NaN,view,9\n10,-5,view,10\n11,,view,11\n'
  loaded = tabular.read_events(_write(tmp_path, text), FMT)
  assert loaded.report.dropped['bad_timestamp'] == 3
  assert loaded.report.dropped['malformed'] == 0
  assert loaded.report.first_bad_line['bad_timestamp'] == 'log.csv:10'
  assert loaded.report.rows_kept == 8


def test_mapping_naming_a_missing_column(tmp_path):
  fmt = tabular.Format(name='shop log', columns={'user': 'customer', 'time': 'time'})
  message = _error(tmp_path, HEADER + GOOD, fmt)
  assert "['customer']" in message and 'line 1' in message

  path = tmp_path / 'log.parquet'
  pq.write_table(pa.table({'user': [1], 'time': [1700000000]}), path)
  with pytest.raises(ValueError, match=r"log\.parquet, schema: .*\['customer'\]"):
    tabular.read_events(path, fmt)
  not_parquet = _write(tmp_path, 'not parquet', 'fake.parquet')
  with pytest.raises(ValueError, match='fake.parquet: not a readable Parquet file'):
    tabular.read_events(not_parquet, FMT)


def test_a_mapping_without_time_or_sequence_is_rejected():
  with pytest.raises(ValueError, match='needs a time column'):
    tabular.Format(name='x', columns={'item': 'item', 'time': 'time'})
  with pytest.raises(ValueError, match='unknown column roles'):
    tabular.Format(name='x', columns={'user': 'u', 'time': 't', 'price': 'p'})


def test_taobao_negative_timestamp_is_a_bad_timestamp(tmp_path):
  path = _write(tmp_path, '1,2,3,pv,1511600000\n1,2,3,pv,-1\n1,2,3,buy,nan\n')
  _, report = taobao.load_taobao(path, time_range=None)
  assert report.dropped['bad_timestamp'] == 2 and report.rows_kept == 1
