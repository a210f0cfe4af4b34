"""The loaded-file cache: reused for the same file and settings, never otherwise."""

import numpy as np
import pytest

from configs import default
from seqad.data import sources
from seqad.data import tabular

T0 = 1511600000
TAOBAO = ''.join(f'{u},{u * 10},{u % 3},pv,{T0 + u}\n' for u in range(1, 30))


@pytest.fixture
def counted_reads(monkeypatch):
  """Counts the loads that parse a file rather than read the cache."""
  reads = []
  read_events = tabular.read_events

  def counting(path, fmt, **kwargs):
    reads.append(str(path))
    return read_events(path, fmt, **kwargs)

  monkeypatch.setattr(tabular, 'read_events', counting)
  return reads


def _config(tmp_path, path):
  data = default.get_config().data
  data.source, data.path, data.cache_dir = 'taobao', str(path), str(tmp_path / 'cache')
  return data


def test_same_file_and_settings_reuse_the_cache(tmp_path, counted_reads):
  path = tmp_path / 'behavior.csv'
  path.write_text(TAOBAO)
  data = _config(tmp_path, path)
  first = sources.load(data)
  second = sources.load(data)
  assert len(counted_reads) == 1
  for name, column in first.table.columns().items():
    np.testing.assert_array_equal(getattr(second.table, name), column)
    assert getattr(second.table, name).dtype == column.dtype
  assert second.report.to_dict() == first.report.to_dict()
  # Every cache file reads back without pickles.
  (saved,) = (tmp_path / 'cache').glob('*.npz')
  with np.load(saved, allow_pickle=False) as arrays:
    assert 'table.user' in arrays.files


def test_changing_the_config_or_the_file_invalidates_it(tmp_path, counted_reads):
  path = tmp_path / 'behavior.csv'
  path.write_text(TAOBAO)
  data = _config(tmp_path, path)
  full = sources.load(data)
  data.max_rows = 10
  head = sources.load(data)
  assert len(counted_reads) == 2 and len(head.table) == 10 < len(full.table)

  data.max_rows = 0
  path.write_text(TAOBAO.replace(',pv,', ',buy,'))  # Same name and size.
  changed = sources.load(data)
  assert len(counted_reads) == 3
  assert np.all(changed.table.event_type == 3)

  data.cache_dir = 'none'
  sources.load(data)
  sources.load(data)
  assert len(counted_reads) == 5


def test_csv_mapping_is_part_of_the_key(tmp_path, counted_reads):
  path = tmp_path / 'log.csv'
  path.write_text('u,t\n1,1700000000000\n2,1700000000000\n')
  data = default.get_config().data
  data.source, data.path, data.cache_dir = 'csv', str(path), str(tmp_path / 'cache')
  data.table.columns.user, data.table.columns.time = 'u', 't'
  data.table.time_unit = 'ms'
  assert sources.load(data).table.timestamp.tolist() == [1700000000] * 2
  data.table.time_unit = 's'
  assert sources.load(data).table.timestamp.tolist() == [1700000000000] * 2
  assert len(counted_reads) == 2


def test_source_errors(tmp_path):
  data = default.get_config().data
  data.source = 'taobao'
  with pytest.raises(ValueError, match='needs --config.data.path'):
    sources.load(data)
  data.path = str(tmp_path / 'missing.csv')
  with pytest.raises(FileNotFoundError, match='missing.csv'):
    sources.load(data)
  data.source = 'excel'
  with pytest.raises(ValueError, match='Unknown file source'):
    sources.load(data)
