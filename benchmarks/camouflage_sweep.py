r"""Detection versus difficulty: every anomaly kind swept over camouflage levels.

  python -m benchmarks.camouflage_sweep --workdir=results/camouflage

Simulates shoppers with the Taobao-fitted simulator, injects every kind into the
validation and test users at each camouflage level, and scores them with each
detector. Training users are clean and identical at every level (same seed, same
split, same vocabulary), so each detector is fitted once and then scores every
level. Writes into --workdir:

  results.jsonl / results.csv  one row per detector x camouflage x kind (AUROC,
                               AUPRC, windows)
  camouflage.png               AUROC against camouflage, one panel per kind
  summary.md                   the AUROC tables: per level for each detector, and
                               the order anomaly for every detector
"""

import csv
import io as std_io
import os
import time

from absl import app
from absl import flags
from absl import logging
import matplotlib
from ml_collections import config_flags
import numpy as np

from seqad import benchmark
from seqad import io
from seqad import metrics
from seqad import report
from seqad.data import dataset
from seqad.data import events

matplotlib.use('Agg')
from matplotlib import pyplot  # pylint: disable=g-import-not-at-top,wrong-import-position

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/default.py', 'Base config; any field can be overridden, e.g. '
    '--config.neural.encoder.hidden=128.')
_WORKDIR = flags.DEFINE_string('workdir', 'results/camouflage', 'Output folder.')
_LEVELS = flags.DEFINE_list('levels', ['0', '0.25', '0.5', '0.75', '1'],
                            'Camouflage levels.')
_DETECTORS = flags.DEFINE_list(
    'detectors', ['lstm-next', 'markov', 'iforest', 'pca', 'lof', 'rules'],
    'Detectors to fit and score.')
_USERS = flags.DEFINE_integer('users', 3000, 'Simulated users.')
_STEPS = flags.DEFINE_integer('steps', 1500, 'Training steps of the neural detectors.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of data, split, injection and training.')


def sweep_config(config, users: int, steps: int, seed: int):
  """`config` (the default's fields), smaller: `users` shoppers, 10% victims per kind."""
  config = config.copy_and_resolve_references()
  config.seed = seed
  config.simulator.num_users = users
  config.anomalies.user_fraction = 0.1  # six kinds: 60% of test users are victims
  config.neural.num_steps = steps
  config.neural_overrides.lstm_next.num_steps = steps
  return config


def score_rows(detector_name, camouflage, data, scores) -> list[dict]:
  """AUROC and AUPRC overall and per kind against all normal test windows."""
  kinds = data.test.kind
  normal = kinds == events.NORMAL
  rows = []
  for name, anomalous, subset in report.kind_subsets(kinds):
    rows.append({
        'detector': detector_name, 'camouflage': camouflage, 'kind': name,
        'auroc': round(metrics.auroc(anomalous[subset], scores[subset]), 4),
        'auprc': round(metrics.auprc(anomalous[subset], scores[subset]), 4),
        'n_anomalous': int(anomalous.sum()), 'n_normal': int(normal.sum()),
    })
  return rows


def plot(rows: list[dict], path: str) -> None:
  """AUROC against camouflage, one panel per kind, one line per detector."""
  kinds = [k for k in dict.fromkeys(r['kind'] for r in rows)]
  detectors = list(dict.fromkeys(r['detector'] for r in rows))
  columns = 4
  figure, axes = pyplot.subplots(-(-len(kinds) // columns), columns,
                                 figsize=(4 * columns, 3.2 * -(-len(kinds) // columns)),
                                 sharex=True, sharey=True, squeeze=False)
  for axis, kind in zip(axes.ravel(), kinds):
    for name in detectors:
      points = sorted((r['camouflage'], r['auroc']) for r in rows
                      if r['kind'] == kind and r['detector'] == name)
      style = '-o' if name in ('lstm-next', 'markov') else '--.'
      axis.plot(*zip(*points), style, label=name, linewidth=2 if style == '-o' else 1)
    axis.axhline(0.5, color='grey', linewidth=0.5)
    axis.set_title(kind)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
  for axis in axes.ravel()[len(kinds):]:
    axis.axis('off')
  for axis in axes[-1]:
    axis.set_xlabel('camouflage')
  for axis in axes[:, 0]:
    axis.set_ylabel('test AUROC')
  axes.ravel()[0].legend(fontsize=8)
  figure.suptitle('Detection vs camouflage (simulated Taobao-like shoppers)')
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  pyplot.close(figure)


def summary_markdown(rows: list[dict], levels: list[float]) -> str:
  """Per detector, AUROC by kind (rows) and level (columns); then the order anomaly."""
  lines = []
  kinds = list(dict.fromkeys(r['kind'] for r in rows))
  table = {(r['detector'], r['kind'], r['camouflage']): r['auroc'] for r in rows}
  for name in dict.fromkeys(r['detector'] for r in rows):
    lines += [f'### {name}', '', '| kind | ' + ' | '.join(f'c={c:g}' for c in levels)
              + ' |', '|---|' + '---|' * len(levels)]
    for kind in kinds:
      values = [table.get((name, kind, c)) for c in levels]
      lines.append(f'| {kind} | ' + ' | '.join(
          '–' if v is None else f'{v:.3f}' for v in values) + ' |')
    lines.append('')
  lines += ['### order_anomaly: sequence vs count-based detectors', '',
            '| detector | ' + ' | '.join(f'c={c:g}' for c in levels) + ' |',
            '|---|' + '---|' * len(levels)]
  for name in dict.fromkeys(r['detector'] for r in rows):
    values = [table.get((name, 'order_anomaly', c)) for c in levels]
    lines.append(f'| {name} | ' + ' | '.join(
        '–' if v is None else f'{v:.3f}' for v in values) + ' |')
  return '\n'.join(lines) + '\n'


def run(base_config, workdir: str, levels: list[float], detector_names: list[str], users: int,
        steps: int, seed: int) -> list[dict]:
  """Builds every level's data, fits each detector once, scores every level."""
  started = time.perf_counter()
  config = sweep_config(base_config, users, steps, seed)
  data = {}
  for level in levels:
    config.anomalies.camouflage = level
    data[level] = dataset.build(config)
  reference = data[levels[0]]
  for level in levels[1:]:  # Same clean training windows at every level.
    np.testing.assert_array_equal(data[level].train.tokens['category'],
                                  reference.train.tokens['category'])

  rows = []
  for name in detector_names:
    detector = benchmark.make_detector(name, reference.vocab.sizes(), config)
    fit_started = time.perf_counter()
    detector.fit(reference.train, reference.validation)
    logging.info('%s fitted in %.1fs.', name, time.perf_counter() - fit_started)
    for level in levels:
      scores = detector.decision_function(data[level].test)
      level_rows = score_rows(name, level, data[level], scores)
      logging.info('%s c=%.2f: %s', name, level,
                   {r['kind']: r['auroc'] for r in level_rows})
      rows += level_rows

  os.makedirs(workdir, exist_ok=True)
  io.write_jsonl_atomic(os.path.join(workdir, 'results.jsonl'), rows)
  buffer = std_io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  io.write_text_atomic(os.path.join(workdir, 'results.csv'), buffer.getvalue())
  plot(rows, os.path.join(workdir, 'camouflage.png'))
  text = (f'# Camouflage sweep\n\n`python -m benchmarks.camouflage_sweep` '
          f'(users={users}, steps={steps}, seed={seed}, neural window score '
          f'{config.neural.window_score}, aggregation {config.neural.aggregation}); '
          f'test AUROC, each kind against '
          f'all normal test windows; {time.perf_counter() - started:.0f} s on '
          f'{os.cpu_count()} CPUs.\n\n' + summary_markdown(rows, levels))
  io.write_text_atomic(os.path.join(workdir, 'summary.md'), text)
  print(text)
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  run(_CONFIG.value, _WORKDIR.value, [float(c) for c in _LEVELS.value], _DETECTORS.value,
      _USERS.value, _STEPS.value, _SEED.value)


if __name__ == '__main__':
  app.run(main)
