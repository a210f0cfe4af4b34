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
