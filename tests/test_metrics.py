"""Metrics against scikit-learn on random inputs, ties included."""

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from seqad import metrics


def _random_case(seed, n=300, tied=False):
  rng = np.random.default_rng(seed)
  labels = rng.random(n) < 0.2
  scores = rng.normal(size=n) + labels * rng.uniform(0, 2)
  if tied:
    scores = np.round(scores, 1)  # Many ties.
  return labels, scores


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('tied', [False, True])
def test_auroc_and_auprc_match_sklearn(seed, tied):
  labels, scores = _random_case(seed, tied=tied)
  assert metrics.auroc(labels, scores) == pytest.approx(
      sk_metrics.roc_auc_score(labels, scores), abs=1e-12)
  assert metrics.auprc(labels, scores) == pytest.approx(
      sk_metrics.average_precision_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize('seed', range(5))
def test_precision_recall_f1_match_sklearn(seed):
  labels, scores = _random_case(seed)
  threshold = np.quantile(scores, 0.8)
  predicted = scores >= threshold
  precision, recall, f1, _ = sk_metrics.precision_recall_fscore_support(
      labels, predicted, average='binary', zero_division=0)
  result = metrics.precision_recall_f1(labels, scores, threshold)
  assert (result.precision, result.recall, result.f1) == pytest.approx((precision, recall, f1))


def test_no_alerts_gives_zero_precision_and_f1():
  result = metrics.precision_recall_f1([0, 1, 1], [0.1, 0.2, 0.3], threshold=1.0)
  assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize('seed', range(5))
def test_best_f1_threshold_is_the_brute_force_optimum(seed):
  labels, scores = _random_case(seed, n=120, tied=True)
  threshold = metrics.best_f1_threshold(labels, scores)
  best = max(sk_metrics.f1_score(labels, scores >= t) for t in np.unique(scores))
  assert sk_metrics.f1_score(labels, scores >= threshold) == pytest.approx(best)


def test_one_class_and_bad_input():
  assert np.isnan(metrics.auroc([0, 0, 0], [1.0, 2.0, 3.0]))
  assert np.isnan(metrics.auprc([0, 0], [1.0, 2.0]))
  with pytest.raises(ValueError, match='not finite'):
    metrics.auroc([0, 1], [np.nan, 1.0])
  with pytest.raises(ValueError, match='1-D of one length'):
    metrics.auroc([0, 1, 1], [1.0, 2.0])
  with pytest.raises(ValueError, match='without anomalous'):
    metrics.best_f1_threshold([0, 0], [1.0, 2.0])


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('k', [1, 10, 60, 300])
def test_precision_at_k_matches_sklearn_on_the_top_k(seed, k):
  labels, scores = _random_case(seed)  # Continuous scores: no ties.
  top_k = np.zeros(len(scores), bool)
  top_k[np.argsort(-scores)[:k]] = True
  assert metrics.precision_at_k(labels, scores, k) == pytest.approx(
      sk_metrics.precision_score(labels, top_k))


def test_precision_at_k_counts_boundary_ties_fractionally():
  # Top-2 of [3, 2, 2, 2]: the 3 (anomalous) and one of three tied 2s, one of
  # which is anomalous: expected hits 1 + 1/3.
  labels = [1, 1, 0, 0]
  assert metrics.precision_at_k(labels, [3.0, 2.0, 2.0, 2.0], 2) == pytest.approx(2 / 3)
  assert metrics.precision_at_k(labels, [3.0, 2.0, 2.0, 2.0], 2) == (
      metrics.precision_at_k([1, 0, 0, 1], [3.0, 2.0, 2.0, 2.0], 2))
  assert np.isnan(metrics.precision_at_k(labels, [1.0, 2.0, 3.0, 4.0], 0))


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('tied', [False, True])
@pytest.mark.parametrize('max_fpr', [0.0, 0.01, 0.1, 0.5])
def test_recall_at_fpr_matches_the_sklearn_roc_curve(seed, tied, max_fpr):
  labels, scores = _random_case(seed, tied=tied)
  fpr, tpr, _ = sk_metrics.roc_curve(labels, scores, drop_intermediate=False)
  expected = tpr[fpr <= max_fpr].max()
  assert metrics.recall_at_fpr(labels, scores, max_fpr) == pytest.approx(expected)


def test_localisation_is_precision_at_the_number_of_injected_events():
  mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
  injected = np.array([[0, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
  scores = np.array([[0.1, 0.9, 0.2, 0.5, 9.0],  # Padding's 9.0 must not count.
                     [0.3, 0.1, 0.2, 0.4, 0.0],
                     [1.0, 2.0, 0.0, 0.0, 0.0]])
  result = metrics.localisation(scores, injected, mask)
  # Window 0: top-2 real events are positions 1 (injected) and 3 (not): 1/2.
  # Window 1: top-1 is position 3, not injected: 0. Window 2: nothing injected.
  np.testing.assert_allclose(result[:2], [0.5, 0.0])
  assert np.isnan(result[2])
  for row in range(2):
    real = mask[row]
    top = np.zeros(real.sum(), bool)
    top[np.argsort(-scores[row][real])[:injected[row].sum()]] = True
    assert result[row] == pytest.approx(
        sk_metrics.precision_score(injected[row][real], top, zero_division=0))


def test_time_to_detection_counts_events_since_the_onset():
  lengths = np.array([8, 16, 24, 32])
  prefix_scores = np.array([
      [0.0, 0.2, 0.9, 1.0],  # Crosses 0.5 at 24 events; onset 10 -> 14.
      [0.9, 0.9, 0.9, 0.9],  # Alerts before its onset at 12; first eligible 16 -> 4.
      [0.0, 0.1, 0.1, 0.2],  # Never crosses.
  ])
  delay = metrics.time_to_detection(prefix_scores, lengths, [10, 12, 0], 0.5)
  np.testing.assert_array_equal(delay[:2], [14.0, 4.0])
  assert np.isnan(delay[2])
