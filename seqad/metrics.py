"""Detection metrics in NumPy, written to agree with scikit-learn's definitions.

All functions take `labels` [n] (True / 1 for anomalous) and `scores` [n]
(higher means more anomalous). Ties in scores are treated as one threshold, as
scikit-learn does, so results do not depend on the order of tied samples.
"""

import dataclasses

import numpy as np


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  labels = np.asarray(labels).astype(bool)
  scores = np.asarray(scores, dtype=np.float64)
  if labels.shape != scores.shape or labels.ndim != 1:
    raise ValueError(
        f'labels and scores must be 1-D of one length, got {labels.shape} and '
        f'{scores.shape}.')
  if not np.all(np.isfinite(scores)):
    raise ValueError(f'{np.sum(~np.isfinite(scores))} scores are not finite.')
  return labels, scores


def _tie_groups(labels, scores):
  """Cumulative true and false positives at each distinct score, descending."""
  order = np.argsort(-scores, kind='stable')
  sorted_scores = scores[order]
  sorted_labels = labels[order]
  # Last position of each run of equal scores: one threshold per run.
  run_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
  true_positives = np.cumsum(sorted_labels)[run_ends]
  false_positives = (run_ends + 1) - true_positives
  return sorted_scores[run_ends], true_positives, false_positives


def auroc(labels, scores) -> float:
  """Area under the ROC curve; NaN when only one class is present."""
  labels, scores = _check(labels, scores)
  positives, negatives = labels.sum(), (~labels).sum()
  if positives == 0 or negatives == 0:
    return float('nan')

  # Mann-Whitney U with average ranks for ties.
  order = np.argsort(scores, kind='stable')
  sorted_scores = scores[order]
  ranks = np.empty(len(scores), dtype=np.float64)
  run_starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
  run_ends = np.r_[run_starts[1:], len(scores)]
  average_rank = (run_starts + run_ends + 1) / 2.0
  ranks[order] = np.repeat(average_rank, run_ends - run_starts)
  rank_sum = ranks[labels].sum()
  return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def auprc(labels, scores) -> float:
  """Average precision (step-wise area under the PR curve); NaN without positives."""
  labels, scores = _check(labels, scores)
  positives = labels.sum()
  if positives == 0:
    return float('nan')
  _, true_positives, false_positives = _tie_groups(labels, scores)
  precision = true_positives / (true_positives + false_positives)
  recall = true_positives / positives
  return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclasses.dataclass(frozen=True)
class ThresholdMetrics:
  precision: float
  recall: float
  f1: float


def precision_recall_f1(labels, scores, threshold: float) -> ThresholdMetrics:
  """Metrics of the rule `score >= threshold`; precision is 0 with no alerts."""
  labels, scores = _check(labels, scores)
  predicted = scores >= threshold
  true_positives = np.sum(predicted & labels)
  precision = true_positives / max(predicted.sum(), 1)
  recall = true_positives / max(labels.sum(), 1)
  f1 = 0.0 if true_positives == 0 else 2 * precision * recall / (precision + recall)
  return ThresholdMetrics(float(precision), float(recall), float(f1))


def best_f1_threshold(labels, scores) -> float:
  """The score threshold with the highest F1 on (validation) data.

  Candidates are the distinct scores; ties in F1 go to the highest threshold,
  the most conservative alerting rule.
  """
  labels, scores = _check(labels, scores)
  if labels.sum() == 0:
    raise ValueError('Cannot fit an F1 threshold without anomalous samples.')
  thresholds, true_positives, false_positives = _tie_groups(labels, scores)
  f1 = 2 * true_positives / (true_positives + false_positives + labels.sum())
  return float(thresholds[np.argmax(f1)])
