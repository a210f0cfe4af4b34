"""Threshold strategies: each one's definition, and that none reads test labels."""

import dataclasses

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from configs import smoke
from seqad import benchmark
from seqad import thresholds
from seqad.data import dataset
from seqad.detectors import rules


def _validation(seed, n=2000, tied=False):
  rng = np.random.default_rng(seed)
  labels = rng.random(n) < 0.05
  scores = rng.normal(size=n) + 3 * labels
  return labels, (np.round(scores, 1) if tied else scores)


@pytest.mark.parametrize('tied', [False, True])
@pytest.mark.parametrize('fpr', [0.0, 0.01, 0.05])
def test_fixed_fpr_is_the_lowest_threshold_within_the_rate(tied, fpr):
  labels, scores = _validation(0, tied=tied)
  threshold = thresholds.fixed_fpr(labels, scores, fpr)
  normal = scores[~labels]
  assert np.mean(normal >= threshold) <= fpr
  lower = normal[normal < threshold]
  if len(lower):  # The next lower candidate would break the rate.
    assert np.mean(normal >= lower.max()) > fpr


def test_contamination_alerts_the_labelled_share():
  labels, scores = _validation(1)
  threshold = thresholds.contamination(labels, scores)
  assert np.sum(scores >= threshold) == int(np.ceil(labels.mean() * len(scores)))
  assert np.mean(scores >= thresholds.contamination(labels, scores, 0.2)) == 0.2


def test_best_f1_is_the_validation_optimum():
  labels, scores = _validation(2, n=300, tied=True)
  best = max(sk_metrics.f1_score(labels, scores >= t) for t in np.unique(scores))
  threshold = thresholds.best_f1(labels, scores)
  assert sk_metrics.f1_score(labels, scores >= threshold) == pytest.approx(best)


def test_pot_extrapolates_an_exponential_tail():
  # Exp(1) normal scores: the score exceeded with probability 1e-3 is ln(1000).
  rng = np.random.default_rng(3)
  scores = rng.exponential(size=20000)
  labels = np.zeros(len(scores), bool)
  threshold = thresholds.peaks_over_threshold(labels, scores, level=0.95, risk=1e-3)
  assert threshold == pytest.approx(np.log(1000), rel=0.1)
  # Anomalies in the validation split do not move it: only normals are fitted.
  with_anomalies = thresholds.peaks_over_threshold(
      np.r_[labels, np.ones(50, bool)], np.r_[scores, np.full(50, 100.0)], 0.95, 1e-3)
  assert with_anomalies == threshold
  with pytest.raises(ValueError, match='risk'):
    thresholds.peaks_over_threshold(labels, scores, level=0.95, risk=0.1)


def _shuffled_test_labels(data: dataset.Dataset, seed: int) -> dataset.Dataset:
  order = np.random.default_rng(seed).permutation(len(data.test))
  test = dataclasses.replace(data.test, kind=data.test.kind[order],
                             event_kind=data.test.event_kind[order])
  return dataclasses.replace(data, test=test)


def test_no_strategy_reads_test_labels():
  config = smoke.get_config()
  data = dataset.build(config)
  runs = []
  for variant in (data, _shuffled_test_labels(data, 0)):
    detector = rules.RuleDetector(data.vocab.sizes(), **config.rules)
    runs.append(benchmark.benchmark_detector(detector, variant, 1, config)[0])
  real, shuffled = runs
  for strategy in thresholds.STRATEGIES:
    assert real[f'{strategy}_threshold'] == shuffled[f'{strategy}_threshold']
  # The oracle does read test labels, and the check above would see it.
  assert real['oracle_f1'] != shuffled['oracle_f1']
  assert real['f1'] != shuffled['f1']
  assert real['oracle_f1'] >= real['f1'] and real['oracle_f1'] >= real['pot_f1']
