"""REPORT.md builds from a small results folder written here; the Pareto front is right."""

import os

import numpy as np

from seqad import io
from seqad import report_builder
from seqad import score_files

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# detector -> (AUROC, train seq/s, score seq/s).
DETECTORS = {'slow-accurate': (0.95, 100.0, 1000.0), 'fast-rough': (0.70, 9000.0, 50000.0),
             'dominated': (0.65, 50.0, 900.0), 'balanced': (0.90, 2000.0, 20000.0)}


def _write_run(run_dir):
  rows, records = [], []
  rng = np.random.default_rng(0)
  kinds = np.r_[np.zeros(200, int), np.ones(20, int), np.full(20, 2)]
  for name, (auroc, train, score) in DETECTORS.items():
    for kind in ('all', 'click_bot', 'order_brushing'):
      rows.append({'detector': name, 'kind': kind, 'auroc': auroc, 'auprc': 0.5,
                   'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'train_seq_per_s': train,
                   'score_seq_per_s': score, 'n_anomalous': 20, 'n_normal': 200,
                   'commit': 'abc123', 'backend': 'cpu', 'cpu_count': 2})
    scores = rng.normal(size=len(kinds)) + 2 * auroc * (kinds > 0)
    records.append(score_files.record(name, scores, kinds, threshold=1.0))
  io.write_jsonl_atomic(os.path.join(run_dir, 'results.jsonl'), rows)
  score_files.write(os.path.join(run_dir, 'scores.jsonl'), records)


def _write_throughput(throughput_dir):
  def row(detector, framework, length=64, batch=64, hidden=64, seq=1000.0):
    return {'detector': detector, 'framework': framework, 'window_length': length,
            'train_batch_size': batch, 'score_batch_size': 4 * batch, 'hidden': hidden,
            'train_seq_per_s': seq, 'score_seq_per_s': 3 * seq, 'train_p50_ms': 10.0,
            'train_p99_ms': 12.0, 'score_p50_ms': 5.0, 'score_p99_ms': 6.0,
            'train_utilisation': 0.4, 'score_utilisation': 0.3, 'load_before': 1.0,
            'load_after': 1.5}

  default = [row('lstm-next', 'jax'), row('lstm-next', 'torch', seq=500.0)]
  default[0].update(train_vs_torch=2.0, score_vs_torch=2.0)
  io.write_jsonl_atomic(os.path.join(throughput_dir, 'default.jsonl'), default)
  io.write_jsonl_atomic(os.path.join(throughput_dir, 'length.jsonl'), [
      row(d, f, length=n, seq=64000.0 / n) for d, f in [('lstm-next', 'jax'),
                                                        ('lstm-next', 'torch')]
      for n in (64, 256, 1024)])
  io.write_jsonl_atomic(os.path.join(throughput_dir, 'batch.jsonl'), [
      row('lstm-next', 'jax', batch=b, seq=10.0 * b) for b in (16, 64)])
  io.write_jsonl_atomic(os.path.join(throughput_dir, 'streaming.jsonl'), [
      {'detector': 'lstm-next', 'streams': 1, 'events_per_s': 9000.0,
       'event_p50_ms': 0.11, 'event_p99_ms': 0.2, 'rescore_p50_ms': 0.5}])


def test_pareto_front_equals_brute_force():
  rng = np.random.default_rng(1)
  x, y = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 40).astype(float)
  x[3] = np.nan
  expected = [i for i in range(40) if np.isfinite(x[i]) and not any(
      x[j] >= x[i] and y[j] >= y[i] and (x[j] > x[i] or y[j] > y[i])
      for j in range(40) if j != i and np.isfinite(x[j]))]
  assert sorted(report_builder.pareto_front(x, y)) == expected


def test_report_builds_from_a_small_results_folder(tmp_path):
  run_dir, throughput_dir = tmp_path / 'run', tmp_path / 'throughput'
  run_dir.mkdir()
  throughput_dir.mkdir()
  _write_run(str(run_dir))
  _write_throughput(str(throughput_dir))
  output = tmp_path / 'REPORT.md'

  text = report_builder.build(str(run_dir), str(throughput_dir), str(output))
  assert output.read_text() == text
  assert '| slow-accurate | all | 0.950 |' in text  # The leaderboard.
  # 'dominated' is beaten on both axes by 'slow-accurate'.
  assert '- Pareto front (score): slow-accurate, balanced, fast-rough' in text
  assert '| lstm-next | jax | 1000 | 3000 |' in text and '| 2.00 | 2.00 |' in text
  assert '| lstm-next | 1 | 9000 |' in text  # Streaming.
  figures = tmp_path / 'REPORT_figures'
  expected = {'accuracy_vs_throughput.png', 'pr_click_bot.png', 'pr_order_brushing.png',
              'scores_click_bot.png', 'scores_order_brushing.png',
              'throughput_vs_length.png', 'scaling.png'}
  assert set(os.listdir(figures)) == expected
  for name in expected:
    assert (figures / name).read_bytes()[:8] == PNG_MAGIC
    assert f'REPORT_figures/{name}' in text


def test_report_without_scores_or_throughput_says_what_is_missing(tmp_path):
  _write_run(str(tmp_path))
  os.remove(tmp_path / 'scores.jsonl')
  text = report_builder.build(str(tmp_path), None, str(tmp_path / 'out' / 'R.md'))
  assert 'No `scores.jsonl`' in text and 'No default throughput rows' in text
  assert os.listdir(tmp_path / 'out' / 'R_figures') == ['accuracy_vs_throughput.png']


def test_score_records_round_trip(tmp_path):
  path = str(tmp_path / 'scores.jsonl')
  score_files.write(path, [score_files.record('x', np.array([1.5, np.nan, -2.0]),
                                              np.array([0, 1, 2]), threshold=0.5)])
  entry = score_files.read(path)['x']
  np.testing.assert_array_equal(entry['scores'], [1.5, np.nan, -2.0])
  np.testing.assert_array_equal(entry['kinds'], [0, 1, 2])
  assert entry['kind_names'][:2] == ('normal', 'click_bot') and entry['threshold'] == 0.5
