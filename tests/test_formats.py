"""Each log format loads a small fixture written here; event types map onto one set."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqad.data import events
from seqad.data import retailrocket
from seqad.data import tabular
from seqad.data import yoochoose

VIEW, CART, BUY = events.VIEW, events.CART, events.BUY
T_MS = 1433221332117  # 2015-06-02 05:02:12.117 UTC, in ms.


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  return path


def _rows(table):
  return list(zip(table.user.tolist(), table.timestamp.tolist(),
                  table.event_type.tolist(), table.item.tolist()))


def test_retailrocket_events(tmp_path):
  path = _write(tmp_path, 'events.csv', (
      'timestamp,visitorid,event,itemid,transactionid\n'
      f'{T_MS + 5000},257597,view,355908,\n'
      f'{T_MS},257597,addtocart,248676,\n'
      f'{T_MS + 9000},257597,transaction,248676,4000\n'
      f'{T_MS},111,view,1,\n'
      f'{T_MS},111,refund,1,\n'))          # not a RetailRocket event
  loaded = retailrocket.load_retailrocket(path)
  t = T_MS // 1000
  assert _rows(loaded.table) == [(111, t, VIEW, 1), (257597, t, CART, 248676),
                                 (257597, t + 5, VIEW, 355908),
                                 (257597, t + 9, BUY, 248676)]
  assert loaded.report.dropped['unknown_event_type'] == 1
  assert loaded.report.repaired['unsorted'] == 2
  transaction = loaded.extras['transactionid']
  assert np.isnan(transaction[:3]).all() and transaction[3] == 4000


def test_yoochoose_clicks_and_buys(tmp_path):
  clicks = _write(tmp_path, 'clicks.dat', (
      '1,2014-04-07T10:51:09.277Z,214536502,0\n'
      '1,2014-04-07T10:54:09.868Z,214536500,S\n'
      '2,2014-04-07T13:56:37.614Z,214662742,2053428709\n'
      '2,2014-04-07T13:57:19.373Z,214825110,2053428709\n'))
  buys = _write(tmp_path, 'buys.dat', (
      '2,2014-04-07T13:58:00.000Z,214662742,1046,2\n'
      '1,2014-04-07T11:00:00.500Z,999,0,1\n'))
  loaded = yoochoose.load_yoochoose(clicks, buys)
  table = loaded.table
  t0 = int(pd.Timestamp('2014-04-07T10:51:09Z').timestamp())
  assert table.user.tolist() == [1, 1, 1, 2, 2, 2]
  assert table.event_type.tolist() == [VIEW, VIEW, BUY, VIEW, VIEW, BUY]
  assert table.timestamp[0] == t0 and table.timestamp[2] == t0 + 531
  # Categories are strings: equal strings hash equally; a buy takes its click's.
  category = table.category
  assert category[3] == category[4] == category[5]
  assert len({category[0], category[1], category[3]}) == 3
  assert category[2] == 0  # Item 999 was never clicked in session 1.
  assert np.isnan(loaded.extras['price'][[0, 1, 3, 4]]).all()
  assert loaded.extras['price'][[2, 5]].tolist() == [0, 1046]
  assert loaded.extras['quantity'][5] == 2
  assert loaded.report.rows_read == 6 and loaded.report.rows_kept == 6


def test_generic_csv_with_mapping_string_ids_own_types_and_extras(tmp_path):
  path = _write(tmp_path, 'log.tsv', (
      'who\twhen\twhat\tsku\tshop\tprice\n'
      'alice\t1700000005000\tclick\tA1\ts1\t9.5\n'
      'bob\t1700000000000\torder\tB2\ts2\t20\n'
      'alice\t1700000000000\trefund\tA1\ts1\t\n'
      'alice\t1700000009000\tadd\tA1\ts1\t9.5\n'))
  fmt = tabular.Format(
      name='shop log', columns={'user': 'who', 'time': 'when', 'event': 'what',
                                'item': 'sku', 'category': 'shop'},
      delimiter='\t', time_unit='ms', string_ids=('user', 'item', 'category'),
      event_map={'click': 'view', 'add': 'cart', 'order': 'buy'},
      keep_unknown_events=True, extras=('price',))
  loaded = tabular.read_events(path, fmt)
  report, table = loaded.report, loaded.table
  assert report.event_types == ['view', 'cart', 'fav', 'buy', 'refund']
  hashes = pd.util.hash_array(np.array(['alice', 'bob'], dtype=object)).view(np.int64)
  alice = table.user == hashes[0]
  assert np.count_nonzero(alice) == 3 and np.count_nonzero(table.user == hashes[1]) == 1
  assert table.event_type[alice].tolist() == [4, VIEW, CART]
  assert table.timestamp[alice].tolist() == [1700000000, 1700000005, 1700000009]
  assert len(np.unique(table.item[alice])) == 1
  price = loaded.extras['price'][alice]
  assert np.isnan(price[0]) and price[1:].tolist() == [9.5, 9.5]

  dropping = tabular.Format(**{**fmt.__dict__, 'keep_unknown_events': False})
  assert tabular.read_events(path, dropping).report.dropped['unknown_event_type'] == 1


def test_parquet_with_mapping_and_sessions_owned_by_users(tmp_path):
  path = tmp_path / 'log.parquet'
  pq.write_table(pa.table({
      'session': pa.array([7, 7, 8, 9], pa.int64()),
      'account': pa.array([1, 1, 1, None], pa.int64()),
      'ts': pa.array(['2024-01-01T00:00:10Z', '2024-01-01T00:00:00Z',
                      '2024-01-02T00:00:00+01:00', '2024-01-03T00:00:00Z']),
      'item': pa.array([5, 6, 5, 5], pa.int32()),
      'action': pa.array(['view', 'buy', 'view', 'view']),
  }), path)
  fmt = tabular.Format(
      name='parquet log', columns={'session': 'session', 'user': 'account',
                                   'time': 'ts', 'item': 'item', 'event': 'action'},
      time_unit='iso', event_map={'view': 'view', 'buy': 'buy'})
  loaded = tabular.read_events(path, fmt)
  table = loaded.table
  midnight = 1704067200
  assert _rows(table) == [(7, midnight, BUY, 6), (7, midnight + 10, VIEW, 5),
                          (8, midnight + 86400 - 3600, VIEW, 5),
                          (9, midnight + 2 * 86400, VIEW, 5)]
  # Session 9 has no account: it owns itself.
  assert loaded.owners.tolist() == [1, 1, 1, -10]
  assert loaded.report.rows_read == 4 and loaded.report.dropped['malformed'] == 0


@pytest.mark.parametrize('unit,text,expected', [
    ('s', '1700000000', 1700000000),
    ('s', '1700000000.75', 1700000000),  # Decimal seconds are floored.
    ('s', '1.7e9', 1700000000),
    ('ms', '1700000000999', 1700000000),
    ('ms', '1700000000999.5', 1700000000),
    ('iso', '2023-11-14T22:13:20.5Z', 1700000000),
    ('date', '2023-11-14', 1699920000),
])
def test_time_units(tmp_path, unit, text, expected):
  path = _write(tmp_path, f'{unit}.csv', f'user,time\n3,{text}\n')
  fmt = tabular.Format(name='t', columns={'user': 'user', 'time': 'time'},
                       time_unit=unit)
  assert tabular.read_events(path, fmt).table.timestamp.tolist() == [expected]
