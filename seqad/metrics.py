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


def precision_at_k(labels, scores, k: int) -> float:
  """Share of anomalies among the `k` highest-scored samples.

  Samples tied with the k-th score count fractionally (the expected precision
  when ties are broken at random), so the result never depends on the order of
  tied samples. NaN when k < 1; k above n is clipped to n.
  """
  labels, scores = _check(labels, scores)
  k = min(int(k), len(scores))
  if k < 1:
    return float('nan')
  kth = np.sort(scores)[::-1][k - 1]
  above = scores > kth
  tied = scores == kth
  share_of_tied = (k - above.sum()) / tied.sum()
  hits = np.sum(labels & above) + share_of_tied * np.sum(labels & tied)
  return float(hits / k)


def recall_at_fpr(labels, scores, max_fpr: float) -> float:
  """The highest recall of any rule `score >= t` whose false-positive rate <= max_fpr.

  Thresholds are the distinct scores (plus +inf, recall 0), the points of
  scikit-learn's `roc_curve`. NaN without both classes.
  """
  labels, scores = _check(labels, scores)
  positives, negatives = labels.sum(), (~labels).sum()
  if positives == 0 or negatives == 0:
    return float('nan')
  _, true_positives, false_positives = _tie_groups(labels, scores)
  allowed = false_positives / negatives <= max_fpr
  return float(np.max(true_positives[allowed], initial=0) / positives)


def localisation(event_scores, injected, mask) -> np.ndarray:
  """Per window, the share of its injected events among its top-scored events.

  With m injected real events in a window, this is the precision at m of the
  window's event scores against its injected events (1 = the m highest-scored
  events are exactly the injected ones; m / events = what random scores get).

  Args:
    event_scores: [windows, time] per-event anomaly scores.
    injected: [windows, time] bool, events that were injected.
    mask: [windows, time] bool, real events.

  Returns:
    [windows] float64; NaN where a window has no injected event.
  """
  event_scores = np.asarray(event_scores, np.float64)
  injected = np.asarray(injected, bool) & np.asarray(mask, bool)
  result = np.full(len(event_scores), np.nan)
  for row in range(len(event_scores)):
    real = np.asarray(mask[row], bool)
    count = int(injected[row].sum())
    if count:
      result[row] = precision_at_k(injected[row][real], event_scores[row][real], count)
  return result


def time_to_detection(prefix_scores, prefix_lengths, onsets, threshold: float,
                      ) -> np.ndarray:
  """Events from an anomaly's onset until its streaming score crosses `threshold`.

  Args:
    prefix_scores: [windows, checkpoints] score of each window cut after its
      first `prefix_lengths[c]` events (a stream scored as it arrives).
    prefix_lengths: [checkpoints] ascending prefix lengths in events.
    onsets: [windows] position (0-based) of each window's first injected event.
    threshold: the alert threshold, fitted on validation.

  Returns:
    [windows] float64: for the first checkpoint that holds the onset event and
    alerts, its length minus the onset (the events seen since the anomaly began,
    the onset event included); NaN if no such checkpoint alerts.
  """
  prefix_scores = np.asarray(prefix_scores, np.float64)
  lengths = np.asarray(prefix_lengths, np.int64)
  onsets = np.asarray(onsets, np.int64)
  eligible = (prefix_scores >= threshold) & (lengths[None, :] > onsets[:, None])
  first = np.argmax(eligible, axis=1)
  delay = (lengths[first] - onsets).astype(np.float64)
  return np.where(eligible.any(axis=1), delay, np.nan)
