"""REPORT.md from a benchmark run and throughput measurements, with matplotlib charts.

`build(run_dir, throughput_dir, output)` reads

  <run_dir>/results.jsonl          metric rows of `benchmarks.run` (required);
  <run_dir>/scores.jsonl           per-window test scores (`seqad.score_files`),
                                   for PR curves and score histograms;
  <throughput_dir>/<sweep>.jsonl   rows of `benchmarks.throughput` ('default',
                                   'length', 'batch', 'width', 'streaming');

and writes `output` (Markdown) and its PNG charts into a folder beside it
(`<output stem>_figures/` unless `figures_dir` is given). Every input but
results.jsonl is optional: a missing one leaves its section out with a note.

Sections: the environment, the leaderboard (`seqad.report`), accuracy versus
training and scoring throughput with the Pareto front (no detector both more
accurate and faster), per anomaly kind the precision-recall curves and score
histograms of every detector, the throughput table with PyTorch ratios and
utilisation, throughput versus window length, and scaling with batch size and
model width.
"""

import os
from typing import Sequence

import numpy as np

from seqad import io
from seqad import report
from seqad import score_files

# Environment fields shown once at the top, from the first row that has them.
_ENVIRONMENT = ('commit', 'seqad_version', 'jax_version', 'backend', 'device_kind',
                'device_count', 'cpu_count', 'machine', 'python', 'torch_version')
SWEEPS = ('default', 'length', 'batch', 'width', 'streaming')


def pareto_front(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
  """Indices of the points no other point beats on both x and y (higher is better).

  A point is dominated when another has x' >= x and y' >= y with at least one
  strictly greater. Points with a non-finite coordinate are never on the
  front. The indices come back sorted by x.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  finite = np.isfinite(x) & np.isfinite(y)
  front = []
  for i in np.flatnonzero(finite):
    others = finite.copy()
    others[i] = False
    dominated = others & (x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i]))
    if not dominated.any():
      front.append(i)
  return np.array(sorted(front, key=lambda i: x[i]), np.int64)


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  return pyplot


def _save(figure, path: str) -> None:
  """Saves atomically (temporary file, then rename) and closes the figure."""
  temporary = path + '.part.png'
  figure.savefig(temporary, dpi=110, bbox_inches='tight')
  os.replace(temporary, path)
  _pyplot().close(figure)


def _read_optional(path: str) -> list[dict]:
  return io.read_jsonl(path) if os.path.exists(path) else []


def _number(value, spec: str) -> str:
  if value is None or (isinstance(value, float) and not np.isfinite(value)):
    return '–'
  return format(value, spec)


def _environment_lines(rows: list[dict]) -> list[str]:
  stamp = {}
  for row in rows:
    for key in _ENVIRONMENT:
      if key in row and key not in stamp:
        stamp[key] = row[key]
  return [f'- {key}: `{stamp[key]}`' for key in _ENVIRONMENT if key in stamp]


def _overall(rows: list[dict]) -> list[dict]:
  """One row per detector: the 'all' kind (the first row where 'all' is absent)."""
  chosen = {}
  for row in rows:
    current = chosen.get(row['detector'])
    if current is None or (row['kind'] == 'all' and current['kind'] != 'all'):
      chosen[row['detector']] = row
  return list(chosen.values())


# Accuracy versus throughput.

def accuracy_vs_throughput(rows: list[dict], path: str) -> list[str]:
  """Two panels (training, scoring): AUROC of 'all' vs seq/s, Pareto front joined.

  Returns Markdown lines naming the detectors on each front.
  """
  pyplot = _pyplot()
  overall = _overall(rows)
  figure, axes = pyplot.subplots(1, 2, figsize=(12, 4.8))
  lines = []
  for axis, part in zip(axes, ('score', 'train')):
    names = [r['detector'] for r in overall]
    x = np.array([r.get(f'{part}_seq_per_s') or np.nan for r in overall], np.float64)
    y = np.array([np.nan if r.get('auroc') is None else r['auroc'] for r in overall])
    front = pareto_front(x, y)
    axis.scatter(x, y, color='tab:blue', zorder=3)
    for name, xi, yi in zip(names, x, y):
      if np.isfinite(xi) and np.isfinite(yi):
        axis.annotate(name, (xi, yi), textcoords='offset points', xytext=(4, 3),
                      fontsize=7)
    if len(front):
      axis.plot(x[front], y[front], color='tab:red', marker='o', zorder=4,
                label='Pareto front')
      axis.legend(loc='best', fontsize=8)
    if np.any(np.isfinite(x) & (x > 0)):
      axis.set_xscale('log')
    axis.set_xlabel(f'{part} sequences / s (log)')
    axis.set_ylabel('AUROC (all kinds)')
    axis.set_title(f'Accuracy vs {"scoring" if part == "score" else "training"} '
                   'throughput')
    axis.grid(alpha=0.3)
    on_front = ', '.join(names[i] for i in front) or '–'
    lines.append(f'- Pareto front ({part}): {on_front}')
  _save(figure, path)
  return lines


# Per-kind curves from per-window scores.

def _kinds_present(scores: dict[str, dict]) -> list[tuple[int, str]]:
  first = next(iter(scores.values()))
  present = sorted(set(first['kinds'].tolist()) - {0})
  return [(k, first['kind_names'][k]) for k in present]


def pr_curves(scores: dict[str, dict], kind: int, kind_name: str, path: str) -> None:
  """Precision-recall curve of every detector on normal + `kind` test windows."""
  from sklearn import metrics as sk_metrics  # pylint: disable=g-import-not-at-top
  pyplot = _pyplot()
  figure, axis = pyplot.subplots(figsize=(6.5, 5))
  for detector, entry in scores.items():
    subset = ((entry['kinds'] == 0) | (entry['kinds'] == kind)) & np.isfinite(
        entry['scores'])
    labels = entry['kinds'][subset] == kind
    if labels.all() or not labels.any():
      continue
    precision, recall, _ = sk_metrics.precision_recall_curve(labels,
                                                             entry['scores'][subset])
    ap = sk_metrics.average_precision_score(labels, entry['scores'][subset])
    axis.plot(recall, precision, linewidth=1.2, label=f'{detector} (AP {ap:.2f})')
    threshold = entry.get('threshold')
    if threshold is not None:
      alerted = entry['scores'][subset] >= threshold
      if alerted.any():
        axis.scatter([labels[alerted].sum() / labels.sum()], [labels[alerted].mean()],
                     s=14, color=axis.lines[-1].get_color(), zorder=3)
  axis.set_xlabel('recall')
  axis.set_ylabel('precision')
  axis.set_xlim(0, 1.01)
  axis.set_ylim(0, 1.02)
  axis.set_title(f'{kind_name} vs normal test windows (dots: fitted threshold)')
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7, loc='lower left', ncol=2)
  _save(figure, path)


def score_histograms(scores: dict[str, dict], kind: int, kind_name: str,
                     path: str) -> None:
  """One panel per detector: score densities of normal and `kind` windows."""
  pyplot = _pyplot()
  detectors = list(scores)
  columns = min(4, len(detectors))
  rows = -(-len(detectors) // columns)
  figure, axes = pyplot.subplots(rows, columns, figsize=(3.3 * columns, 2.4 * rows),
                                 squeeze=False)
  for axis in axes.flat[len(detectors):]:
    axis.axis('off')
  for axis, detector in zip(axes.flat, detectors):
    entry = scores[detector]
    finite = np.isfinite(entry['scores'])
    normal = entry['scores'][finite & (entry['kinds'] == 0)]
    anomalous = entry['scores'][finite & (entry['kinds'] == kind)]
    both = np.concatenate([normal, anomalous])
    if len(both) == 0:
      axis.set_title(f'{detector}: no scores', fontsize=8)
      continue
    # Bins over the central range, so one far outlier does not squash the rest.
    low, high = np.percentile(both, [0.5, 99.5])
    if high <= low:
      low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, 40)
    axis.hist(np.clip(normal, low, high), bins=bins, density=True, alpha=0.55,
              label='normal')
    axis.hist(np.clip(anomalous, low, high), bins=bins, density=True, alpha=0.55,
              label=kind_name)
    if entry.get('threshold') is not None and low <= entry['threshold'] <= high:
      axis.axvline(entry['threshold'], color='black', linewidth=0.8, linestyle='--')
    axis.set_title(detector, fontsize=8)
    axis.tick_params(labelsize=6)
  axes.flat[0].legend(fontsize=6)
  figure.suptitle(f'Window scores: normal vs {kind_name} (dashed: fitted threshold)',
                  fontsize=10)
  figure.tight_layout()
  _save(figure, path)


# Throughput tables and charts.

def throughput_table(rows: list[dict]) -> list[str]:
  """The default-size throughput rows as Markdown, ratios and utilisation included."""
  lines = ['| detector | framework | train seq/s | score seq/s | train p50 / p99 ms | '
           'score p50 / p99 ms | compile s train / score | util train | util score | '
           'train vs torch | score vs torch | load |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(
        f"| {r['detector']} | {r.get('framework', 'jax')} | "
        f"{_number(r.get('train_seq_per_s'), '.0f')} | "
        f"{_number(r.get('score_seq_per_s'), '.0f')} | "
        f"{_number(r.get('train_p50_ms'), '.1f')} / {_number(r.get('train_p99_ms'), '.1f')} | "
        f"{_number(r.get('score_p50_ms'), '.1f')} / {_number(r.get('score_p99_ms'), '.1f')} | "
        f"{_number(r.get('train_compile_s'), '.1f')} / "
        f"{_number(r.get('score_compile_s'), '.1f')} | "
        f"{_number(r.get('train_utilisation'), '.0%')} | "
        f"{_number(r.get('score_utilisation'), '.0%')} | "
        f"{_number(r.get('train_vs_torch'), '.2f')} | "
        f"{_number(r.get('score_vs_torch'), '.2f')} | "
        f"{_number(r.get('load_before'), '.2f')} → {_number(r.get('load_after'), '.2f')} |")
  return lines


def streaming_table(rows: list[dict]) -> list[str]:
  lines = ['| detector | streams | events / s | per-event p50 / p99 ms | '
           'rescoring a window per event, p50 ms |', '|---|---|---|---|---|']
  for r in rows:
    lines.append(
        f"| {r['detector']} | {r['streams']} | {_number(r.get('events_per_s'), '.0f')} | "
        f"{_number(r.get('event_p50_ms'), '.3f')} / {_number(r.get('event_p99_ms'), '.3f')} | "
        f"{_number(r.get('rescore_p50_ms'), '.2f')} |")
  return lines


def _series(rows: list[dict], key: str):
  """(label, xs, rows) per (framework, detector), sorted by `key`."""
  groups = {}
  for row in rows:
    groups.setdefault((row.get('framework', 'jax'), row['detector']), []).append(row)
  for (framework, detector), members in groups.items():
    members = sorted(members, key=lambda r: r[key])
    yield framework, f'{detector} ({framework})', [r[key] for r in members], members


def throughput_vs_length(rows: list[dict], path: str) -> None:
  """Events/s (seq/s x length) of training and scoring against window length."""
  pyplot = _pyplot()
  figure, axes = pyplot.subplots(1, 2, figsize=(12, 4.5))
  for axis, part in zip(axes, ('train', 'score')):
    for framework, label, xs, members in _series(rows, 'window_length'):
      events = [r[f'{part}_seq_per_s'] * r['window_length'] for r in members]
      axis.plot(xs, events, marker='o', label=label,
                linestyle='--' if framework != 'jax' else '-')
    axis.set_xscale('log', base=2)
    axis.set_yscale('log')
    axis.set_xlabel('window length (events)')
    axis.set_ylabel(f'{part} events / s')
    axis.set_title(f'{"Training" if part == "train" else "Scoring"} throughput vs '
                   'window length')
    axis.grid(alpha=0.3, which='both')
    axis.legend(fontsize=7)
  _save(figure, path)


def scaling(sweeps: dict[str, list[dict]], path: str) -> None:
  """Seq/s against training batch size and against model width (those swept)."""
  pyplot = _pyplot()
  present = [(name, key) for name, key in (('batch', 'train_batch_size'),
                                           ('width', 'hidden')) if sweeps.get(name)]
  figure, axes = pyplot.subplots(len(present), 2, figsize=(12, 4.2 * len(present)),
                                 squeeze=False)
  for (name, key), row_axes in zip(present, axes):
    for axis, part in zip(row_axes, ('train', 'score')):
      for framework, label, xs, members in _series(sweeps[name], key):
        axis.plot(xs, [r[f'{part}_seq_per_s'] for r in members], marker='o',
                  label=label, linestyle='--' if framework != 'jax' else '-')
      axis.set_xscale('log', base=2)
      axis.set_yscale('log')
      axis.set_xlabel('training batch size (scoring: 4x)' if name == 'batch'
                      else 'encoder width')
      axis.set_ylabel(f'{part} sequences / s')
      axis.grid(alpha=0.3, which='both')
      axis.legend(fontsize=7)
  _save(figure, path)


# The whole report.

def build(run_dir: str, throughput_dir: str | None, output: str,
          figures_dir: str | None = None) -> str:
  """Writes the report to `output` and its charts to `figures_dir`; returns the text."""
  results_path = os.path.join(run_dir, 'results.jsonl')
  if not os.path.exists(results_path):
    raise FileNotFoundError(f'No results.jsonl in {run_dir}: run `python -m '
                            'benchmarks.run --workdir=...` first.')
  rows = io.read_jsonl(results_path)
  if not rows:
    raise ValueError(f'{results_path} has no rows.')
  output_dir = os.path.dirname(os.path.abspath(output))
  if figures_dir is None:
    figures_dir = os.path.splitext(os.path.abspath(output))[0] + '_figures'
  os.makedirs(figures_dir, exist_ok=True)
  relative = os.path.relpath(figures_dir, output_dir)

  def figure(name: str) -> tuple[str, str]:
    return os.path.join(figures_dir, name), f'{relative}/{name}'

  sweeps = {name: _read_optional(os.path.join(throughput_dir, f'{name}.jsonl'))
            if throughput_dir else [] for name in SWEEPS}
  lines = ['# seqad report', '',
           f'Generated by `python -m benchmarks.report` from `{run_dir}` '
           f'and `{throughput_dir or "no throughput folder"}`.', '',
           '## Environment', '']
  lines += _environment_lines(rows + sweeps['default'])
  lines += ['', '## Leaderboard', '',
            'Precision, recall and F1 at the best-F1 threshold fitted on validation; '
            'throughput as measured inside the benchmark run.', '',
            report.leaderboard_markdown(rows)]

  path, link = figure('accuracy_vs_throughput.png')
  front = accuracy_vs_throughput(rows, path)
  lines += ['## Accuracy versus throughput', '',
            'AUROC over all anomaly kinds against sequences per second; the red line '
            'joins the Pareto front, the detectors no other detector beats on both '
            'axes.', '', f'![accuracy vs throughput]({link})', ''] + front + ['']

  scores_path = os.path.join(run_dir, 'scores.jsonl')
  lines += ['## Per anomaly kind', '']
  if os.path.exists(scores_path):
    scores = score_files.read(scores_path)
    for kind, kind_name in _kinds_present(scores):
      pr_path, pr_link = figure(f'pr_{kind_name}.png')
      histogram_path, histogram_link = figure(f'scores_{kind_name}.png')
      pr_curves(scores, kind, kind_name, pr_path)
      score_histograms(scores, kind, kind_name, histogram_path)
      lines += [f'### {kind_name}', '', f'![PR curves, {kind_name}]({pr_link})', '',
                f'![score histograms, {kind_name}]({histogram_link})', '']
  else:
    lines += [f'No `scores.jsonl` in `{run_dir}` (written by runs of this version '
              'onwards): no PR curves or histograms.', '']

  lines += ['## Throughput', '']
  if sweeps['default']:
    lines += ['Default sizes (configs/default.py). All contenders of a shape are '
              'timed in alternating rounds in one process, so the ratios see the same '
              'machine load; utilisation is achieved FLOP/s over a large matmul timed '
              'in the same rounds. Load: the 1-minute load average before → after.', '']
    lines += throughput_table(sweeps['default']) + ['']
  else:
    lines += ['No default throughput rows (`python -m benchmarks.throughput`).', '']
  if sweeps['streaming']:
    lines += ['### Streaming scoring', '',
              'One event per stream per call (`seqad.streaming`): the cost of an '
              'event does not depend on how many came before it.', '']
    lines += streaming_table(sweeps['streaming']) + ['']
  if sweeps['length']:
    path, link = figure('throughput_vs_length.png')
    throughput_vs_length(sweeps['length'], path)
    lines += ['### Throughput versus window length', '',
              'Events per second at a fixed number of events per batch: flat for a '
              'cost linear in length, falling where attention is quadratic.', '',
              f'![throughput vs length]({link})', '']
  if sweeps['batch'] or sweeps['width']:
    path, link = figure('scaling.png')
    scaling(sweeps, path)
    lines += ['### Scaling with batch size and width', '', f'![scaling]({link})', '']

  text = '\n'.join(lines).rstrip() + '\n'
  io.write_text_atomic(output, text)
  return text
