"""Repeats into one table: mean ± std over seeds, bootstrap intervals, win rates.

`aggregate` groups result rows that differ only in their seed; for each metric
it gives the mean, the sample standard deviation and the number of seeds, and
for AUROC and F1 a 95% percentile bootstrap interval of the mean over seeds
(seeds resampled with replacement, 1,000 times, from a fixed generator, so the
same rows always give the same interval). With 3 seeds the interval is coarse:
it can never be wider than the range of the seeds' values.

`win_rates` compares detectors across anomaly kinds within each block (dataset,
kinds, camouflage, setting): on every kind, each detector is ranked by its mean
AUROC (rank 1 best, ties share the mean rank); its win rate is the share of
(kind, other detector) pairs it beats (a tie counts half). The Nemenyi critical
difference (Demsar, JMLR 2006) says how far apart two mean ranks must be to
differ at the 5% level: CD = q_0.05(k) * sqrt(k (k + 1) / (6 N)) for k
detectors and N kinds, q from the studentized range distribution / sqrt(2).
"""

import collections
import math

import numpy as np
from scipy import stats

# Metric columns averaged over seeds, in table order.
METRICS = ('auroc', 'auprc', 'f1', 'pot_f1', 'fixed_fpr_f1', 'contamination_f1',
           'oracle_f1', 'p_at_k', 'recall_at_fpr', 'localisation', 'detection_delay',
           'stream_detected', 'stream_false_alarms')
_INTERVALS = ('auroc', 'f1')
# Columns that identify a block and a row of the table.
BLOCK = ('dataset', 'kinds', 'camouflage', 'setting')
ROW = BLOCK + ('detector', 'kind')
_RESAMPLES = 1000


def _finite(values) -> np.ndarray:
  values = np.asarray([np.nan if v is None else v for v in values], np.float64)
  return values[np.isfinite(values)]


def bootstrap_mean_interval(values, resamples: int = _RESAMPLES,
                            seed: int = 0) -> tuple[float, float]:
  """95% percentile bootstrap interval of the mean of `values` [n]."""
  values = _finite(values)
  if len(values) == 0:
    return float('nan'), float('nan')
  rng = np.random.default_rng(seed)
  means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
  low, high = np.percentile(means, [2.5, 97.5])
  return float(low), float(high)


def aggregate(rows: list[dict]) -> list[dict]:
  """One dict per (block, detector, kind): `<metric>_mean`, `_std`, seeds, intervals.

  Groups keep the order in which they first appear in `rows`.
  """
  groups = collections.OrderedDict()
  for row in rows:
    groups.setdefault(tuple(row.get(k) for k in ROW), []).append(row)
  result = []
  for key, members in groups.items():
    summary = dict(zip(ROW, key))
    summary['seeds'] = sorted(row['seed'] for row in members)
    summary['n_anomalous'] = float(np.mean([row['n_anomalous'] for row in members]))
    summary['n_normal'] = float(np.mean([row['n_normal'] for row in members]))
    for metric in METRICS:
      values = _finite([row.get(metric) for row in members])
      summary[f'{metric}_mean'] = float(values.mean()) if len(values) else float('nan')
      summary[f'{metric}_std'] = (float(values.std(ddof=1)) if len(values) > 1
                                  else float('nan'))
    for metric in _INTERVALS:
      summary[f'{metric}_ci'] = bootstrap_mean_interval([r.get(metric) for r in members])
    result.append(summary)
  return result


def nemenyi_cd(num_detectors: int, num_datasets: int, alpha: float = 0.05) -> float:
  """The Nemenyi critical difference of mean ranks."""
  if num_detectors < 2 or num_datasets < 1:
    return float('nan')
  q = stats.studentized_range.ppf(1 - alpha, num_detectors, np.inf) / math.sqrt(2)
  return float(q * math.sqrt(num_detectors * (num_detectors + 1) / (6 * num_datasets)))


def win_rates(summaries: list[dict], metric: str = 'auroc_mean') -> list[dict]:
  """Per block and detector: mean rank, win rate and the block's Nemenyi CD.

  Only per-kind rows count ('all' would double-count the kinds).
  """
  blocks = collections.OrderedDict()
  for row in summaries:
    if row['kind'] != 'all':
      blocks.setdefault(tuple(row[k] for k in BLOCK), []).append(row)
  result = []
  for block, rows in blocks.items():
    detectors = list(dict.fromkeys(row['detector'] for row in rows))
    kinds = list(dict.fromkeys(row['kind'] for row in rows))
    table = np.full((len(kinds), len(detectors)), np.nan)
    for row in rows:
      table[kinds.index(row['kind']), detectors.index(row['detector'])] = row[metric]
    complete = ~np.isnan(table).any(axis=1)
    table = table[complete]
    ranks = stats.rankdata(-table, axis=1) if len(table) else table
    wins = np.zeros(len(detectors))
    for a in range(len(detectors)):
      for b in range(len(detectors)):
        if a != b:
          wins[a] += np.sum(table[:, a] > table[:, b]) + 0.5 * np.sum(
              table[:, a] == table[:, b])
    comparisons = max(len(table) * (len(detectors) - 1), 1)
    cd = nemenyi_cd(len(detectors), len(table))
    for index, detector in enumerate(detectors):
      result.append({**dict(zip(BLOCK, block)), 'detector': detector,
                     'mean_rank': float(ranks[:, index].mean()) if len(table) else math.nan,
                     'win_rate': float(wins[index] / comparisons),
                     'kinds_compared': int(len(table)), 'critical_difference': cd})
  return result


def _cell(mean: float, std: float, digits: int = 3) -> str:
  if mean is None or not math.isfinite(mean):
    return '–'
  if std is None or not math.isfinite(std):
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {std:.{digits}f}'


def _interval(interval) -> str:
  low, high = interval
  if not (math.isfinite(low) and math.isfinite(high)):
    return '–'
  return f'[{low:.3f}, {high:.3f}]'


def leaderboard_markdown(summaries: list[dict]) -> str:
  """Markdown: per block, a metric table and a win-rate table."""
  lines = []
  blocks = collections.OrderedDict()
  for row in summaries:
    blocks.setdefault(tuple(row[k] for k in BLOCK), []).append(row)
  ranks = collections.defaultdict(list)
  for row in win_rates(summaries):
    ranks[tuple(row[k] for k in BLOCK)].append(row)

  for block, rows in blocks.items():
    name = ', '.join(f'{k} {v}' for k, v in zip(BLOCK, block) if v is not None)
    lines += [f'### {name}', '',
              '| detector | kind | AUROC | AUROC 95% CI | AUPRC | F1 (best-F1 thr.) | '
              'F1 CI | F1 (POT thr.) | F1 (fixed-FPR thr.) | F1 (contam. thr.) | '
              'oracle F1 (test-tuned) | p@k | recall@FPR | localisation | '
              'delay (events) | stream detected | stream false alarms | seeds | '
              'anomalous / normal |',
              '|' + '---|' * 19]
    for row in rows:
      lines.append(
          f"| {row['detector']} | {row['kind']} | "
          f"{_cell(row['auroc_mean'], row['auroc_std'])} | {_interval(row['auroc_ci'])} | "
          f"{_cell(row['auprc_mean'], row['auprc_std'])} | "
          f"{_cell(row['f1_mean'], row['f1_std'])} | {_interval(row['f1_ci'])} | "
          f"{_cell(row['pot_f1_mean'], row['pot_f1_std'])} | "
          f"{_cell(row['fixed_fpr_f1_mean'], row['fixed_fpr_f1_std'])} | "
          f"{_cell(row['contamination_f1_mean'], row['contamination_f1_std'])} | "
          f"{_cell(row['oracle_f1_mean'], row['oracle_f1_std'])} | "
          f"{_cell(row['p_at_k_mean'], row['p_at_k_std'])} | "
          f"{_cell(row['recall_at_fpr_mean'], row['recall_at_fpr_std'])} | "
          f"{_cell(row['localisation_mean'], row['localisation_std'])} | "
          f"{_cell(row['detection_delay_mean'], row['detection_delay_std'], 1)} | "
          f"{_cell(row['stream_detected_mean'], row['stream_detected_std'], 2)} | "
          f"{_cell(row['stream_false_alarms_mean'], row['stream_false_alarms_std'], 2)} | "
          f"{len(row['seeds'])} | {row['n_anomalous']:.0f} / {row['n_normal']:.0f} |")
    block_ranks = sorted(ranks.get(block, []), key=lambda r: r['mean_rank'])
    if block_ranks:
      lines += ['', f"Across {block_ranks[0]['kinds_compared']} anomaly kinds, by mean "
                f"AUROC (Nemenyi critical difference of mean ranks at 5%: "
                f"{block_ranks[0]['critical_difference']:.2f}):", '',
                '| detector | mean rank | win rate |', '|---|---|---|']
      lines += [f"| {r['detector']} | {r['mean_rank']:.2f} | {r['win_rate']:.2f} |"
                for r in block_ranks]
    lines.append('')
  return '\n'.join(lines)
