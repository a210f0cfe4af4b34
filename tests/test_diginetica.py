"""The DIGINETICA loader on a written fixture, on bad files and on the real sample."""

import os

import numpy as np
import pytest

from seqad.data import diginetica

SAMPLE = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                      'diginetica', 'train-item-views_sample.csv')
HEADER = 'session_id;user_id;item_id;timeframe;eventdate\n'


def _write(tmp_path, text, name='views.csv'):
  path = tmp_path / name
  path.write_text(text)
  return path


def test_fixture_rows_are_parsed_sorted_and_counted(tmp_path):
  path = _write(tmp_path, HEADER + (
      '2;NA;30;5000;2016-05-09\n'
      '1;7;10;2000;2016-05-09\n'
      '1;7;11;0;2016-05-09\n'        # earlier than the row above: unsorted
      '1;7;11;0;2016-05-09\n'        # exact duplicate
      '3;NA;abc;0;2016-05-10\n'      # malformed item
      '3;NA;31;0;2016-13-40\n'       # malformed date
      '3;NA;32;;2016-05-10\n'))      # missing timeframe: a bad timestamp
  table, report = diginetica.load_diginetica(path)

  assert report.rows_read == 7 and report.rows_kept == 3
  assert report.dropped == {'malformed': 2, 'unknown_event_type': 0, 'bad_timestamp': 1,
                            'timestamp_out_of_range': 0, 'duplicate': 1}
  assert report.first_bad_line == {'malformed': 'views.csv:6',
                                   'bad_timestamp': 'views.csv:8'}
  # Session 1 after session 2 and the earlier row of session 1 were both moved.
  assert report.repaired == {'unsorted': 2}
  midnight = 1462752000  # 2016-05-09 00:00 UTC
  assert table.user.tolist() == [1, 1, 2]
  assert table.item.tolist() == [11, 10, 30]
  assert table.timestamp.tolist() == [midnight, midnight + 2, midnight + 5]
  assert np.all(table.event_type == 0) and np.all(table.category == 0)


def test_bad_files_give_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.csv'):
    diginetica.load_diginetica(tmp_path / 'nope.csv')
  with pytest.raises(ValueError, match='empty'):
    diginetica.load_diginetica(_write(tmp_path, ''))
  comma = _write(tmp_path, HEADER.replace(';', ','), 'comma.csv')
  with pytest.raises(ValueError, match='comma.csv, line 1'):
    diginetica.load_diginetica(comma)


def test_a_line_with_too_many_fields_is_counted_as_malformed(tmp_path):
  path = _write(tmp_path, HEADER + '1;NA;10;0;2016-05-09;surplus\n'
                 '1;NA;11;0;2016-05-09\n' '1;NA;12;0;2016-05-09;a;b\n'
                 '1;NA;13;1000;2016-05-09\n' '1;NA;14;2000;2016-05-09\n')
  table, report = diginetica.load_diginetica(path)
  assert report.rows_read == 5 and report.dropped['malformed'] == 2
  assert report.first_bad_line['malformed'] == 'views.csv:2'
  assert table.item.tolist() == [11, 13, 14]


def test_real_sample_matches_its_readme():
  if not os.path.exists(SAMPLE):
    pytest.skip(f'DIGINETICA sample not found at {SAMPLE}')
  table, report = diginetica.load_diginetica(SAMPLE)
  # Numbers from ../shared/data/diginetica/README.md.
  assert report.rows_read == 12391
  assert report.dropped == {'malformed': 0, 'unknown_event_type': 0, 'bad_timestamp': 0,
                            'timestamp_out_of_range': 0,
                            'duplicate': report.rows_read - len(table)}
  assert len(np.unique(table.user)) == 2986
  assert len(np.unique(table.item)) == 7139
  assert report.repaired['unsorted'] > 0  # The README: rows are not in time order.
  assert table.is_sorted()
