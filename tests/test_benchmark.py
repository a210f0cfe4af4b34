"""End to end: the CLI on the smoke config, and determinism of the data build."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import VOCAB_SIZES
from configs import smoke
from seqad import report_builder
from seqad import score_files
from seqad.data import dataset
from seqad.data import events
from seqad.detectors import markov

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cli_on_smoke_config_writes_complete_results(tmp_path):
  workdir = tmp_path / 'run'
  completed = subprocess.run(
      [sys.executable, '-m', 'benchmarks.run', '--config=configs/smoke.py',
       f'--workdir={workdir}'],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-3000:]

  rows = [json.loads(line) for line in (workdir / 'results.jsonl').read_text().splitlines()]
  config = smoke.get_config()
  expected = {(d, k) for d in config.detectors
              for k in ('all',) + tuple(config.anomalies.kinds)}
  assert {(row['detector'], row['kind']) for row in rows} == expected
  for row in rows:
    for key in ('auroc', 'auprc', 'precision', 'recall', 'f1', 'train_seq_per_s',
                'score_seq_per_s', 'threshold'):
      assert math.isfinite(row[key]), (row['detector'], row['kind'], key)
    assert 0 <= row['auroc'] <= 1 and row['n_anomalous'] > 0 and row['n_normal'] > 0

  assert json.loads((workdir / 'config.json').read_text())['seed'] == config.seed
  assert '| lstm-next | all |' in (workdir / 'leaderboard.md').read_text()
  assert '| markov | all |' in completed.stdout
  assert not [f for f in os.listdir(workdir) if f.startswith('.tmp-')]

  # Every test window's score per detector, for the report (no user ids).
  scores = score_files.read(str(workdir / 'scores.jsonl'))
  assert list(scores) == list(config.detectors)
  overall = rows[0]
  assert overall['kind'] == 'all'
  assert len(scores[overall['detector']]['scores']) == (
      overall['n_normal'] + overall['n_anomalous'])
  text = report_builder.build(str(workdir), None, str(tmp_path / 'REPORT.md'))
  assert '| lstm-next | all |' in text and '![PR curves' in text


def test_same_seed_same_windows_and_scores():
  config = smoke.get_config()
  first, second = dataset.build(config), dataset.build(config)
  for split in dataset.SPLITS:
    a, b = getattr(first, split), getattr(second, split)
    for field in a.tokens:
      np.testing.assert_array_equal(a.tokens[field], b.tokens[field])
    np.testing.assert_array_equal(a.kind, b.kind)
    np.testing.assert_array_equal(a.event_kind, b.event_kind)

  scores = [markov.MarkovDetector(d.vocab.sizes()).fit(d.train).decision_function(d.test)
            for d in (first, second)]
  np.testing.assert_array_equal(scores[0], scores[1])

  config.seed = 1
  other = dataset.build(config)
  assert not np.array_equal(other.train.tokens['category'][:50],
                            first.train.tokens['category'][:50])


def test_anomalies_only_in_validation_and_test_by_default():
  config = smoke.get_config()
  data = dataset.build(config)
  assert np.all(data.train.kind == events.NORMAL)
  assert np.all(data.train.event_kind == events.NORMAL)
  for split in (data.validation, data.test):
    present = set(np.unique(split.kind[split.kind > 0]))
    assert present == set(map(events.kind_index, config.anomalies.kinds))


DATA = os.path.join(REPO, '..', 'shared', 'data')


@pytest.mark.parametrize('source,path,rows_read,users', [
    ('taobao', 'taobao_userbehavior/UserBehavior_head_814users.csv', 84287, 814),
    ('diginetica', 'diginetica/train-item-views_sample.csv', 12391, 2986),
])
def test_real_logs_get_every_kind_injected(source, path, rows_read, users):
  path = os.path.join(DATA, path)
  if not os.path.exists(path):
    pytest.skip(f'real data slice not found at {path}')
  config = smoke.get_config()
  config.data.source = source
  config.data.path = path
  config.data.min_events = 1  # DIGINETICA sessions are a few views long.
  data = dataset.build(config)

  assert data.report['rows_read'] == rows_read
  assert sum(data.report[f'{s}_users'] for s in dataset.SPLITS) == users
  if source == 'taobao':  # The slice's README: 35 rows before the dataset's span.
    assert data.report['dropped']['timestamp_out_of_range'] == 35
  assert np.all(data.train.kind == events.NORMAL)
  expected = set(map(events.kind_index, config.anomalies.kinds))
  if source == 'diginetica':  # Views only: no order to make implausible.
    expected.discard(events.kind_index('order_anomaly'))
  for split in (data.validation, data.test):
    assert set(np.unique(split.kind[split.kind > 0])) == expected


def test_neural_checkpoints_are_keyed_by_their_settings(tmp_path):
  from seqad import benchmark  # pylint: disable=g-import-not-at-top

  def checkpoint_dir(config):
    detector = benchmark.make_detector('lstm-next', VOCAB_SIZES, config,
                                       workdir=str(tmp_path))
    return detector.checkpoint_dir

  config = smoke.get_config()
  first = checkpoint_dir(config)
  assert first == checkpoint_dir(smoke.get_config())  # The same command resumes.
  assert first.startswith(str(tmp_path / 'checkpoints' / 'lstm-next'))
  config.simulator.num_users += 1
  assert checkpoint_dir(config) != first  # Other data: a directory of its own.
  config = smoke.get_config()
  config.neural.learning_rate *= 2
  assert checkpoint_dir(config) != first


def test_detector_lists_split_comma_separated_entries():
  from seqad import benchmark  # pylint: disable=g-import-not-at-top
  config = smoke.get_config()
  config.detectors = ('lstm-next,markov', ' rules ')  # As the command line gives them.
  assert benchmark.detector_names(config) == ['lstm-next', 'markov', 'rules']
