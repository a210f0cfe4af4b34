"""The suite runner: resumes after a crash, and its summary statistics."""

import numpy as np
import pytest

from configs import smoke
from seqad import benchmark
from seqad import io
from seqad import suite
from seqad import summary


class Killed(Exception):
  """Stands in for a kill: raised from inside a cell."""


def _tiny_suite():
  config = smoke.get_config()
  config.detectors = ('markov', 'pca', 'rules')
  config.suite = suite_section = type(config)()
  suite_section.datasets = ('simulator',)
  suite_section.kinds = ('all',)
  suite_section.camouflage = (0.0,)
  suite_section.settings = ('clean', 'contaminated')
  suite_section.seeds = (0, 1)
  config.data.train_contamination = 0.05
  config.evaluation.explained_windows = 4
  config.evaluation.top_alerts = 2
  return config


def _deterministic(rows):
  """Rows without what legitimately differs between runs: timings and stamps."""
  varying = ('seq_per_s', 'compile_s', 'train_s', 'commit')
  return [{k: v for k, v in row.items() if not any(s in k for s in varying)}
          for row in rows]


def test_killed_suite_resumes_and_matches_an_uninterrupted_run(tmp_path, monkeypatch):
  config = _tiny_suite()
  total = 2 * 2 * len(config.detectors)
  suite.run(config, str(tmp_path / 'whole'))

  calls, kills = [], [5]  # The 5th cell of the first resumed run dies.
  original = benchmark.benchmark_detector

  def crashing(detector, *args, **kwargs):
    calls.append(detector.name)
    if kills and len(calls) == kills[0]:
      kills.pop()
      raise Killed('killed mid-suite')
    return original(detector, *args, **kwargs)

  monkeypatch.setattr(benchmark, 'benchmark_detector', crashing)
  resumed = tmp_path / 'resumed'
  with pytest.raises(Killed):
    suite.run(config, str(resumed))
  partial = io.read_jsonl(str(resumed / 'results.jsonl'))
  assert len({row['cell'] for row in partial}) == 4

  calls.clear()
  suite.run(config, str(resumed))
  assert len(calls) == total - 4  # Only the unfinished cells ran.
  calls.clear()
  suite.run(config, str(resumed))
  assert not calls  # A finished suite runs nothing.

  whole_rows = io.read_jsonl(str(tmp_path / 'whole' / 'results.jsonl'))
  resumed_rows = io.read_jsonl(str(resumed / 'results.jsonl'))
  assert _deterministic(resumed_rows) == _deterministic(whole_rows)
  assert ((resumed / 'leaderboard.md').read_text()
          == (tmp_path / 'whole' / 'leaderboard.md').read_text())
  assert ((resumed / 'alerts.jsonl').read_text()
          == (tmp_path / 'whole' / 'alerts.jsonl').read_text())

  row = resumed_rows[0]
  for key in ('config_hash', 'commit', 'libraries', 'device_kind', 'cell', 'setting'):
    assert key in row
  assert row['libraries']['numpy'] == np.__version__
  text = (resumed / 'leaderboard.md').read_text()
  assert 'setting clean' in text and 'setting contaminated' in text
  assert '| rules | all |' in text and 'user' not in (resumed / 'alerts.jsonl').read_text()


def test_changing_the_config_reruns_the_cells(tmp_path):
  config = _tiny_suite()
  config.suite.settings = ('clean',)
  config.suite.seeds = (0,)
  config.detectors = ('rules', 'pca', 'lstm-next')
  before = suite.plan(config)[0]['cells']
  config.rules.quantile = 0.95
  config.neural.num_steps += 1
  after = suite.plan(config)[0]['cells']
  assert [cell[1] for cell in before] == [cell[1] for cell in after]
  changed = [b[2] != a[2] for b, a in zip(before, after)]
  assert changed == [True, False, True]  # pca's own section did not change.
  config.data.min_events = 5  # Shared fields change every cell.
  assert not set(c[2] for c in after) & set(c[2] for c in suite.plan(config)[0]['cells'])


def test_aggregate_mean_std_and_interval():
  rows = [{'dataset': 'd', 'kinds': 'all', 'camouflage': '-', 'setting': 's',
           'detector': 'x', 'kind': 'all', 'seed': seed, 'auroc': value, 'f1': value / 2,
           'n_anomalous': 10, 'n_normal': 90} for seed, value in enumerate([0.7, 0.8, 0.95])]
  (result,) = summary.aggregate(rows)
  assert result['auroc_mean'] == pytest.approx(np.mean([0.7, 0.8, 0.95]))
  assert result['auroc_std'] == pytest.approx(np.std([0.7, 0.8, 0.95], ddof=1))
  low, high = result['auroc_ci']
  assert 0.7 - 1e-12 <= low < result['auroc_mean'] < high <= 0.95 + 1e-12
  assert np.isnan(result['localisation_mean']) and result['seeds'] == [0, 1, 2]


def test_win_rates_and_critical_difference():
  # Demsar (2006), table 5: q_0.05 = 2.343 for 3 classifiers, 3.164 for 10.
  assert summary.nemenyi_cd(3, 1) == pytest.approx(2.343 * np.sqrt(2), abs=2e-3)
  assert summary.nemenyi_cd(10, 30) == pytest.approx(
      3.164 * np.sqrt(10 * 11 / 180), abs=2e-3)
  auroc = {('a', 'k1'): 0.9, ('b', 'k1'): 0.8, ('c', 'k1'): 0.8,
           ('a', 'k2'): 0.7, ('b', 'k2'): 0.9, ('c', 'k2'): 0.6}
  rows = [{'dataset': 'd', 'kinds': 'all', 'camouflage': '-', 'setting': 's',
           'detector': d, 'kind': k, 'auroc_mean': v} for (d, k), v in auroc.items()]
  result = {r['detector']: r for r in summary.win_rates(rows)}
  assert result['a']['mean_rank'] == pytest.approx((1 + 2) / 2)
  assert result['c']['mean_rank'] == pytest.approx((2.5 + 3) / 2)
  # a beats b and c on k1, beats c on k2: 3 of 4; c ties b once: 0.5 of 4.
  assert result['a']['win_rate'] == pytest.approx(0.75)
  assert result['c']['win_rate'] == pytest.approx(0.125)
