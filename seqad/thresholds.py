"""Alert thresholds, always fitted on validation scores and labels, never on test.

Every strategy is a function of the validation split alone: its labels [n] and
scores [n]. None of them is handed test data, so none can read a test label;
`tests/test_thresholds.py` checks that through the harness. Strategies:

  best_f1        the validation score with the highest F1 (ties: the highest).
  contamination  alert on the top `contamination` share of validation windows;
                 by default the share that validation labels as anomalous.
  fixed_fpr      the lowest threshold at which at most `fpr` of the validation
                 normal windows alert.
  pot            peaks over threshold (extreme-value theory, as SPOT in Siffer et
                 al., KDD 2017): a generalised Pareto distribution fitted to the
                 excesses of validation normal scores over their `pot_level`
                 quantile t, extrapolated to the score exceeded with probability
                 `pot_risk`:
                   z = t + (sigma / xi) * ((risk * n / n_t) ** -xi - 1),
                 with n normal scores, n_t of them above t, xi the shape and sigma
                 the scale (z = t - sigma * log(risk * n / n_t) when xi = 0).

The test-set oracle (best F1 threshold on test labels) is not here on purpose:
the evaluation computes it beside these, labelled as an oracle.
"""

import dataclasses

from absl import logging
import numpy as np
from scipy import stats

from seqad import metrics

STRATEGIES = ('best_f1', 'contamination', 'fixed_fpr', 'pot')

# Fewer excesses than this make the Pareto fit meaningless.
_MIN_EXCESSES = 10


@dataclasses.dataclass(frozen=True)
class ThresholdParams:
  """Knobs of the strategies; every field maps onto `config.evaluation`."""

  contamination: float = 0.0  # Alerted share; 0 = validation's labelled share.
  fpr: float = 0.01  # fixed_fpr: allowed false-positive rate on validation normals.
  pot_level: float = 0.95  # pot: quantile of normal scores where the tail starts.
  pot_risk: float = 0.005  # pot: tail probability the threshold is set at.


def best_f1(labels, scores) -> float:
  return metrics.best_f1_threshold(labels, scores)


def contamination(labels, scores, rate: float = 0.0) -> float:
  """The k-th highest score, k = ceil(rate * n); rate 0 = the labelled share."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, np.float64)
  rate = rate or labels.mean()
  if not 0 < rate < 1:
    raise ValueError(f'Contamination must be in (0, 1), got {rate}.')
  k = max(int(np.ceil(rate * len(scores))), 1)
  return float(np.sort(scores)[::-1][k - 1])


def fixed_fpr(labels, scores, fpr: float = 0.01) -> float:
  """The lowest score threshold at which <= fpr of the normal windows alert."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, np.float64)
  normal = scores[~labels]
  if len(normal) == 0 or not 0 <= fpr < 1:
    raise ValueError(f'Need normal windows and fpr in [0, 1), got {len(normal)} '
                     f'and {fpr}.')
  allowed = int(np.floor(fpr * len(normal)))
  values, counts = np.unique(normal, return_counts=True)  # Ascending.
  alerting = np.cumsum(counts[::-1])[::-1]  # Normals >= each value.
  fits = alerting <= allowed
  if not np.any(fits):  # Even the top score alerts too many: alert above it.
    return float(np.nextafter(values[-1], np.inf))
  return float(values[np.argmax(fits)])


def peaks_over_threshold(labels, scores, level: float = 0.95,
                         risk: float = 0.005) -> float:
  """Generalised-Pareto tail threshold of the normal scores (see module doc)."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, np.float64)
  normal = scores[~labels]
  if not 0 < level < 1 or not 0 < risk < 1 - level:
    raise ValueError(f'Need 0 < level < 1 and 0 < risk < 1 - level, got {level} '
                     f'and {risk}.')
  tail_start = float(np.quantile(normal, level))
  excesses = normal[normal > tail_start] - tail_start
  if len(excesses) < _MIN_EXCESSES or np.ptp(excesses) == 0:
    logging.warning('POT: %d distinct excesses over the %.3f quantile; using the '
                    'empirical %.4f quantile instead.', len(excesses), level, 1 - risk)
    return float(np.quantile(normal, 1 - risk))
  shape, _, scale = stats.genpareto.fit(excesses, floc=0.0)
  ratio = risk * len(normal) / len(excesses)
  if abs(shape) < 1e-6:
    return float(tail_start - scale * np.log(ratio))
  return float(tail_start + scale / shape * (ratio ** -shape - 1))


def fit_all(labels, scores, params: ThresholdParams = ThresholdParams(),
            ) -> dict[str, float]:
  """Strategy name -> threshold, all fitted on these (validation) labels and scores."""
  return {
      'best_f1': best_f1(labels, scores),
      'contamination': contamination(labels, scores, params.contamination),
      'fixed_fpr': fixed_fpr(labels, scores, params.fpr),
      'pot': peaks_over_threshold(labels, scores, params.pot_level, params.pot_risk),
  }
