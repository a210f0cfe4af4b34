"""Evaluating scores into result rows, and rendering the leaderboard."""

import math

import numpy as np

from seqad import metrics
from seqad.data import events


def kind_subsets(kinds: np.ndarray):
  """Yields (name, anomalous, subset) for 'all' anomalies and each kind present:
  [windows] bool masks of the kind's windows and of those scored against them
  (the kind plus every normal window). `kinds` as in `evaluate`."""
  normal = kinds == events.NORMAL
  yield 'all', ~normal, np.ones(len(kinds), bool)
  for index in range(1, len(events.ANOMALY_KINDS)):
    anomalous = kinds == index
    if anomalous.any():
      yield events.ANOMALY_KINDS[index], anomalous, normal | anomalous


def evaluate(scores: np.ndarray, kinds: np.ndarray, threshold: float) -> list[dict]:
  """Metrics overall ('all') and per anomaly kind present in `kinds`.

  Args:
    scores: [windows] anomaly scores of the test windows.
    kinds: [windows] window labels (0 normal, else an index of ANOMALY_KINDS).
    threshold: alert threshold, fitted on validation data only.

  Returns:
    One dict per kind: each kind is scored against all normal windows.
  """
  normal = kinds == events.NORMAL
  rows = []
  for name, anomalous, subset in kind_subsets(kinds):
    labels, subset_scores = anomalous[subset], scores[subset]
    at_threshold = metrics.precision_recall_f1(labels, subset_scores, threshold)
    rows.append({
        'kind': name,
        'n_normal': int(normal.sum()),
        'n_anomalous': int(anomalous.sum()),
        'auroc': metrics.auroc(labels, subset_scores),
        'auprc': metrics.auprc(labels, subset_scores),
        'precision': at_threshold.precision,
        'recall': at_threshold.recall,
        'f1': at_threshold.f1,
        'threshold': threshold,
    })
  return rows


def _number(value, digits: int) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '–'
  return f'{value:.{digits}f}'


def leaderboard_markdown(rows: list[dict]) -> str:
  """A Markdown table, one line per detector x kind, in the order given.

  Precision, recall and F1 are at the best-F1 threshold fitted on validation;
  'oracle F1' is at the best threshold on the test labels themselves, an upper
  bound shown beside it, never a result.
  """
  header = ('| detector | kind | AUROC | AUPRC | precision | recall | F1 | '
            'oracle F1 (test-tuned) | recall@FPR | localisation | '
            'train seq/s | score seq/s | compile s | anomalous / normal |')
  lines = [header, '|' + '---|' * (header.count('|') - 1)]
  for row in rows:
    compile_s = (row.get('train_compile_s') or 0.0) + (row.get('score_compile_s') or 0.0)
    lines.append(
        f"| {row['detector']} | {row['kind']} | {_number(row['auroc'], 3)} | "
        f"{_number(row['auprc'], 3)} | {_number(row['precision'], 3)} | "
        f"{_number(row['recall'], 3)} | {_number(row['f1'], 3)} | "
        f"{_number(row.get('oracle_f1'), 3)} | {_number(row.get('recall_at_fpr'), 3)} | "
        f"{_number(row.get('localisation'), 3)} | "
        f"{_number(row['train_seq_per_s'], 0)} | {_number(row['score_seq_per_s'], 0)} | "
        f"{_number(compile_s, 1)} | {row['n_anomalous']} / {row['n_normal']} |")
  return '\n'.join(lines) + '\n'
