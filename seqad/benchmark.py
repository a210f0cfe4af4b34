"""The benchmark job: data -> detectors -> scores -> metrics and throughput.

`run(config, workdir)` is what `python -m benchmarks.run` calls. It writes into
`workdir`:
  config.json       the resolved configuration;
  data_report.json  rows read and dropped, users and windows per split and kind;
  results.jsonl     one JSON object per detector x anomaly kind;
  alerts.jsonl      each detector's top test alerts with their top-scored events;
  scores.jsonl      each detector's test window scores and labels (no user ids);
  leaderboard.md    the same rows as a Markdown table.
Every file is written atomically (temporary file, then rename).
"""

import hashlib
import json
import os
import statistics
import time

from absl import logging
import jax
import ml_collections
import numpy as np

from seqad import environment
from seqad import io
from seqad import evaluation
from seqad import parallel
from seqad import report
from seqad import score_files
from seqad import settings
from seqad.data import dataset
from seqad.data import windows as windows_lib
from seqad.detectors import base
from seqad.detectors import classical
from seqad.detectors import markov
from seqad.detectors import neural
from seqad.detectors import rules


# Classical detectors built as `Class(vocab_sizes, **config.<name>)`; the
# seeded ones also get `seed=config.seed`.
_CLASSICAL = {
    'markov': (markov.MarkovDetector, False),
    'ngram': (classical.NGramDetector, False),
    'iforest': (classical.IsolationForestDetector, True),
    'lof': (classical.LOFDetector, False),
    'pca': (classical.PCADetector, False),
    'rules': (rules.RuleDetector, False),
    'rules-val': (rules.ValidationRuleDetector, False),
    'ecod': (classical.ECODDetector, False),
}
CLASSICAL_DETECTORS = tuple(_CLASSICAL)


def detector_names(config: ml_collections.ConfigDict) -> list[str]:
  """`config.detectors` as a list; entries may hold comma-separated names, as
  `--config.detectors=lstm-next,markov` gives on the command line."""
  return [name.strip() for entry in config.detectors for name in entry.split(',')
          if name.strip()]


def make_plan(config: ml_collections.ConfigDict) -> parallel.DataParallel:
  """The devices of the run's neural detectors, from `config.parallel`."""
  section = config.get('parallel') or {}
  return parallel.DataParallel(section.get('mode', 'single'),
                               section.get('num_devices', 0))


def _training_key(section: ml_collections.ConfigDict,
                  config: ml_collections.ConfigDict) -> str:
  """12 hex digits naming what a neural detector's training depends on (its
  section, the data and the seed), so a run with other settings checkpoints
  beside, not over, an earlier one, and the same command resumes its own."""
  parts = {'neural': section.to_dict(), 'seed': config.seed}
  for name in ('data', 'simulator', 'anomalies'):
    if name in config:
      parts[name] = config[name].to_dict()
  text = json.dumps(parts, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def make_detector(name: str, vocab_sizes: dict[str, int],
                  config: ml_collections.ConfigDict,
                  plan: parallel.DataParallel | None = None,
                  workdir: str | None = None) -> base.Detector:
  """The detector called `name`, configured from its config section.

  Neural detectors are named '<encoder>-<objective>' (see
  `seqad.detectors.neural`) and share `config.neural`, updated by
  `config.neural_overrides.<encoder>_<objective>` where present; the others are
  the keys of `_CLASSICAL`, each configured by its own section (a '-' in the
  name reads as '_', e.g. `config.rules_val`). With a `workdir`, neural
  detectors checkpoint into <workdir>/checkpoints/<name>/<key of their
  settings> (the same command resumes) and log training to
  <workdir>/train/<name>.jsonl.
  """
  if neural.parse_name(name):
    section = ml_collections.ConfigDict(config.neural.to_dict())
    overrides = config.neural_overrides.get(name.replace('-', '_'))
    if overrides:
      section.update(overrides)
    checkpoint_dir = log_path = None
    if workdir:
      checkpoint_dir = os.path.join(workdir, 'checkpoints', name,
                                    _training_key(section, config))
      if jax.process_index() == 0:
        log_path = os.path.join(workdir, 'train', f'{name}.jsonl')
    return neural.NeuralDetector(name, vocab_sizes, section, config.seed, plan or
                                 make_plan(config), checkpoint_dir, log_path)
  if name not in _CLASSICAL:
    raise ValueError(f'Unknown detector {name!r}: neither <encoder>-<objective> nor '
                     f'one of {tuple(_CLASSICAL)}.')
  detector_class, seeded = _CLASSICAL[name]
  kwargs = dict(config[name.replace('-', '_')])
  if seeded:
    kwargs['seed'] = config.seed
  return detector_class(vocab_sizes, **kwargs)


def _timed_scores(detector: base.Detector, windows, repeats: int) -> tuple[np.ndarray, float]:
  """Scores and the median scoring throughput (windows/s) over `repeats` passes."""
  durations = []
  for _ in range(max(repeats, 1)):
    start = time.perf_counter()
    scores = detector.decision_function(windows)
    durations.append(time.perf_counter() - start)
  return scores, len(windows) / statistics.median(durations)


def uses_labels(detector: base.Detector) -> bool:
  """Whether the detector learns from training labels (the supervised objective)."""
  objective = getattr(detector, 'objective', None)
  return getattr(objective, 'name', None) == 'sup'


def training_windows(detector: base.Detector, data: dataset.Dataset,
                     config: ml_collections.ConfigDict | None) -> windows_lib.Windows:
  """The training windows `detector` may learn from in the data's setting."""
  setting = data.report.get('setting', 'clean')
  labelled = config.data.get('labelled_per_kind', 0) if config else 0
  view = settings.training_view(data.train, setting, labelled,
                                seed=config.seed if config else 0)
  return settings.fit_windows(view, uses_labels(detector))


def benchmark_detector(detector: base.Detector, data: dataset.Dataset,
                       score_repeats: int, config: ml_collections.ConfigDict | None = None,
                       alerts: list | None = None,
                       scores: list | None = None) -> list[dict]:
  """Fits, calibrates on validation, evaluates on test; one row per kind.

  Thresholds are fitted on validation only (seqad/thresholds.py); `alerts`, if
  given, receives the explained top alerts (seqad/evaluation.py), and
  `scores` the test window scores (a `seqad.score_files` record).
  """
  train = training_windows(detector, data, config)
  logging.info('Fitting %s on %d training windows.', detector.name, len(train))
  detector.fit(train, data.validation)

  # Validation scoring also compiles the scorer, so the timed test passes don't.
  validation_scores = detector.decision_function(data.validation)
  test_scores, score_seq_per_s = _timed_scores(detector, data.test, score_repeats)

  rows, explained = evaluation.evaluate_detector(
      detector, data.validation, data.test, validation_scores, test_scores,
      config.get('evaluation') if config else None, seed=config.seed if config else 0)
  if alerts is not None:
    alerts.extend(explained)
  if scores is not None:
    scores.append(score_files.record(detector.name, test_scores, data.test.kind,
                                     rows[0]['threshold']))
  for row in rows:
    row.update({
        'detector': detector.name,
        'train_seq_per_s': detector.timings.get('train_seq_per_s'),
        'train_compile_s': detector.timings.get('train_compile_s'),
        'train_s': detector.timings.get('train_s'),
        'score_seq_per_s': score_seq_per_s,
        'score_compile_s': detector.timings.get('score_compile_s'),
    })
  overall = rows[0]
  logging.info('%s: AUROC %.3f  AUPRC %.3f  F1 %.3f  train %.0f seq/s  score %.0f seq/s',
               detector.name, overall['auroc'], overall['auprc'], overall['f1'],
               overall['train_seq_per_s'] or float('nan'), score_seq_per_s)
  return rows


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
  """Runs every configured detector on the configured data; returns the rows.

  In a multi-host run every process calls this; only process 0 writes files
  besides the shared checkpoints.
  """
  primary = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  if primary:
    io.write_json_atomic(os.path.join(workdir, 'config.json'), config.to_dict())
  env = environment.describe()
  logging.info('Environment: %s', env)

  data = dataset.build(config)
  if primary:
    io.write_json_atomic(os.path.join(workdir, 'data_report.json'), data.report)

  rows, alerts, scores = [], [], []
  plan = make_plan(config)
  for name in detector_names(config):
    detector = make_detector(name, data.vocab.sizes(), config, plan, workdir)
    for row in benchmark_detector(detector, data, config.score_repeats, config, alerts,
                                  scores):
      row.update({'data_source': config.data.source, 'seed': config.seed,
                  'window_length': config.data.window_length, **env})
      rows.append(row)

  leaderboard = report.leaderboard_markdown(rows)
  if primary:
    io.write_jsonl_atomic(os.path.join(workdir, 'results.jsonl'), rows)
    io.write_jsonl_atomic(os.path.join(workdir, 'alerts.jsonl'), alerts)
    score_files.write(os.path.join(workdir, 'scores.jsonl'), scores)
    io.write_text_atomic(os.path.join(workdir, 'leaderboard.md'), leaderboard)
    logging.info('Wrote %d result rows to %s', len(rows), workdir)
    print(leaderboard)
  return rows
