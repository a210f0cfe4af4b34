"""A resumable benchmark suite: every cell of a grid, each result saved as it lands.

The grid (`config.suite`) is datasets x anomaly-kind groups x camouflage levels x
settings x seeds x detectors. A *cell* is one detector on one data build; its
rows (one per anomaly kind) are appended atomically to `results.jsonl` with:

  cell         the cell's key, e.g. 'simulator|all|-|clean|seed=0|lof';
  config_hash  SHA-256 of the cell's resolved configuration;
  commit, library versions and the device description (seqad.environment).

A rerun of the same command reads `results.jsonl` and skips every cell whose
key and config hash are already there, so a suite killed half-way resumes where
it stopped and loses nothing; changing a setting changes the hash and reruns
the cells it affects (a detector's own section only affects its cells).
`alerts.jsonl` collects the cells' explained top alerts (appended before the
cell's result rows, which mark the cell finished), and `leaderboard.md` is
rebuilt from the finished cells of the current grid at the end: mean ± std over
seeds and win rates (seqad/summary.py).

Grid entries:
  datasets    'simulator', or '<source>:<path>' for a loader (taobao, diginetica);
  kinds       'all' (every kind the injectors know) or '+'-joined kind names;
  camouflage  levels set as `config.anomalies.camouflage` where the injectors
              have that field; without it the axis is skipped (one level, '-').
"""

import copy
import hashlib
import importlib.metadata
import json
import os

from absl import logging
import ml_collections

from seqad import benchmark
from seqad import environment
from seqad import io
from seqad import summary
from seqad.data import anomalies
from seqad.data import dataset
from seqad.detectors import neural

_LIBRARIES = ('jax', 'flax', 'optax', 'numpy', 'scipy', 'scikit-learn', 'pyod', 'pandas')
_NO_CAMOUFLAGE = '-'


def library_versions() -> dict[str, str]:
  versions = {}
  for name in _LIBRARIES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = 'missing'
  return versions


def _kinds(group: str) -> tuple[str, ...]:
  return tuple(anomalies.KINDS) if group == 'all' else tuple(group.split('+'))


def _camouflage_levels(config: ml_collections.ConfigDict) -> tuple:
  if 'camouflage' not in config.anomalies:
    logging.info('AnomalyParams has no camouflage field: skipping that axis.')
    return (_NO_CAMOUFLAGE,)
  return tuple(config.suite.camouflage)


def cell_config(config: ml_collections.ConfigDict, data_name: str, kinds: str,
                camouflage, setting: str, seed: int) -> ml_collections.ConfigDict:
  """The benchmark config of one data build of the grid (all detectors)."""
  cell = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
  del cell['suite']
  source, _, path = data_name.partition(':')
  cell.data.source, cell.data.path = source, path
  cell.anomalies.kinds = _kinds(kinds)
  if camouflage != _NO_CAMOUFLAGE:
    cell.anomalies.camouflage = camouflage
  cell.data.setting = setting
  cell.seed = seed
  return cell


def _detector_sections(name: str) -> set[str]:
  """The config sections detector `name` reads (see benchmark.make_detector)."""
  if neural.parse_name(name):
    return {'neural', 'neural_overrides'}
  return {name.replace('-', '_')}


def config_hash(config: ml_collections.ConfigDict, detector: str) -> str:
  """SHA-256 (16 hex digits) of the configuration one detector's cell runs with.

  Other detectors' sections are left out, so tuning one detector reruns its
  cells only.
  """
  others = {'neural', 'neural_overrides'} | {
      name.replace('-', '_') for name in benchmark.CLASSICAL_DETECTORS}
  others -= _detector_sections(detector)
  resolved = {k: v for k, v in config.to_dict().items()
              if k not in others and k != 'detectors'}
  resolved['detector'] = detector
  text = json.dumps(resolved, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(config: ml_collections.ConfigDict) -> list[dict]:
  """Every data build of the grid with its cells, in run order.

  Returns:
    Dicts with 'config' (the build's config), 'block' (dataset, kinds,
    camouflage, setting, seed) and 'cells' [(detector, key, hash)].
  """
  builds = []
  suite = config.suite
  for data_name in suite.datasets:
    for kinds in suite.kinds:
      for camouflage in _camouflage_levels(config):
        for setting in suite.settings:
          for seed in suite.seeds:
            build = cell_config(config, data_name, kinds, camouflage, setting, seed)
            prefix = f'{data_name}|{kinds}|{camouflage}|{setting}|seed={seed}'
            builds.append({
                'config': build,
                'block': {'dataset': data_name, 'kinds': kinds,
                          'camouflage': camouflage, 'setting': setting, 'seed': seed},
                'cells': [(name, f'{prefix}|{name}', config_hash(build, name))
                          for name in benchmark.detector_names(config)],
            })
  return builds


def _finished(results_path: str) -> set[tuple[str, str]]:
  if not os.path.exists(results_path):
    return set()
  return {(row['cell'], row['config_hash']) for row in io.read_jsonl(results_path)}


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
  """Runs the unfinished cells of the grid, then rebuilds the leaderboard.

  Returns:
    The summary rows of the leaderboard (seqad.summary.aggregate).
  """
  os.makedirs(workdir, exist_ok=True)
  io.write_json_atomic(os.path.join(workdir, 'suite_config.json'), config.to_dict())
  results_path = os.path.join(workdir, 'results.jsonl')
  alerts_path = os.path.join(workdir, 'alerts.jsonl')
  stamp = {**environment.describe(), 'libraries': library_versions()}
  builds = plan(config)
  done = _finished(results_path)
  total = sum(len(b['cells']) for b in builds)
  logging.info('Suite: %d cells, %d already finished.',
               total, sum((k, h) in done for b in builds for _, k, h in b['cells']))

  for build in builds:
    pending = [cell for cell in build['cells'] if cell[1:] not in done]
    if not pending:
      continue
    data = dataset.build(build['config'])
    for name, key, digest in pending:
      logging.info('Suite cell %s', key)
      detector = benchmark.make_detector(name, data.vocab.sizes(), build['config'])
      alerts = []
      rows = benchmark.benchmark_detector(
          detector, data, build['config'].score_repeats, build['config'], alerts)
      meta = {**build['block'], 'cell': key, 'config_hash': digest}
      for row in rows:
        row.update(meta, window_length=build['config'].data.window_length, **stamp)
      io.append_jsonl_atomic(alerts_path, [{**alert, **meta} for alert in alerts])
      io.append_jsonl_atomic(results_path, rows)  # Marks the cell finished.

  summaries = leaderboard(config, workdir)
  logging.info('Suite finished: %d cells in %s', total, workdir)
  return summaries


def leaderboard(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
  """Writes leaderboard.md from the current grid's finished cells; returns the rows."""
  wanted = {(key, digest): index for index, (key, digest) in enumerate(
      (key, digest) for build in plan(config) for _, key, digest in build['cells'])}
  rows = [row for row in io.read_jsonl(os.path.join(workdir, 'results.jsonl'))
          if (row['cell'], row['config_hash']) in wanted]
  # Grid order, then the kinds in their row order: independent of file order.
  rows.sort(key=lambda row: wanted[(row['cell'], row['config_hash'])])
  summaries = summary.aggregate(rows)  # Blocks in grid order.
  text = ('# Suite leaderboard\n\nMean ± std over seeds; thresholds fitted on '
          'validation, the oracle F1 on test labels (an upper bound, not a result). '
          'Columns: see README "Suite".\n\n' + summary.leaderboard_markdown(summaries))
  io.write_text_atomic(os.path.join(workdir, 'leaderboard.md'), text)
  io.write_json_atomic(os.path.join(workdir, 'summary.json'),
                       {'rows': summaries, 'win_rates': summary.win_rates(summaries)})
  return summaries
