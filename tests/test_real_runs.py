"""The benchmark end to end on the real Taobao and DIGINETICA slices.

Also checks privacy: no raw user (or session) id reaches the workdir.
"""

import json
import os
import re

import numpy as np
import pytest

from configs import smoke
from seqad import benchmark
from seqad.data import sources

DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')


@pytest.mark.parametrize('source,path,unit', [
    ('taobao', 'taobao_userbehavior/UserBehavior_head_814users.csv', 'session'),
    ('diginetica', 'diginetica/train-item-views_sample.csv', 'user'),
])
def test_benchmark_runs_on_real_slices_without_leaking_ids(tmp_path, source, path,
                                                          unit):
  path = os.path.join(DATA, path)
  if not os.path.exists(path):
    pytest.skip(f'real data slice not found at {path}')
  config = smoke.get_config()
  config.detectors = ('markov', 'rules')
  config.data.source, config.data.path = source, path
  config.data.cache_dir = str(tmp_path / 'cache')
  config.data.window_unit = unit
  config.data.min_events = 2
  workdir = tmp_path / 'run'
  rows = benchmark.run(config, str(workdir))
  assert {row['detector'] for row in rows} == {'markov', 'rules'}
  assert all(0 <= row['auroc'] <= 1 for row in rows)

  report = json.loads((workdir / 'data_report.json').read_text())
  assert report['rows_read'] > 0 and report['rows_kept'] <= report['rows_read']
  assert report['events_profile']['users'] == report['events_profile'][
      'events_per_user']['count']
  assert 'validation_in_train' in report['duplicate_windows']

  # Raw ids of 5+ digits are distinctive enough to search for in every output.
  table = sources.load(config.data).table
  ids = {str(u) for u in np.unique(table.user) if u >= 10_000}
  assert ids or source == 'diginetica'  # Its session ids are 1..3999: not searchable.
  for name in os.listdir(workdir):
    numbers = set(re.findall(r'\d+', (workdir / name).read_text()))
    assert not numbers & ids, name
