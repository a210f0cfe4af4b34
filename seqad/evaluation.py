"""From a fitted detector's scores to result rows and alerts: the evaluation protocol.

For every anomaly kind (and 'all'), scored against all normal test windows:
  * threshold-free: AUROC with a 95% bootstrap interval over test windows,
    AUPRC, precision at k (k = the subset's anomalous windows), recall at a
    fixed false-positive rate;
  * at each threshold strategy of `seqad.thresholds`, fitted on validation:
    precision, recall and F1 (`<strategy>_f1`, ...); the best-F1 strategy also
    fills the plain `precision` / `recall` / `f1` / `threshold` columns;
  * `oracle_f1`: the F1 of the best threshold chosen on the test labels of the
    subset itself. It is an upper bound no deployment reaches, reported beside
    the calibrated F1 so the gap is visible, never as a result;
  * localisation: for up to `explained_windows` anomalous windows per kind, the
    share of injected events among the window's top-scored events;
  * time to detection: for the same windows, events from the first injected
    event until the score of the window's prefix reaches the best-F1 threshold
    (checked every `prefix_step` events), and the share of windows detected;
    `stream_false_alarms` is the share of (up to 4 x `explained_windows`)
    normal test windows whose score crosses the threshold at any checkpoint,
    the price of alerting on prefixes.
"""

import ml_collections
import numpy as np

from seqad import explain
from seqad import metrics
from seqad import report
from seqad import thresholds
from seqad.data import events
from seqad.data import windows as windows_lib
from seqad.detectors import base

_BOOTSTRAP_RESAMPLES = 200


# The `config.evaluation` fields and their defaults (configs/default.py sets them).
DEFAULTS = {
    'contamination': 0.0, 'fpr': 0.01, 'pot_level': 0.95, 'pot_risk': 0.005,
    'prefix_step': 8, 'explained_windows': 64, 'top_alerts': 10, 'events_per_alert': 5,
}


def threshold_params(section: ml_collections.ConfigDict) -> thresholds.ThresholdParams:
  return thresholds.ThresholdParams(
      contamination=section.contamination, fpr=section.fpr,
      pot_level=section.pot_level, pot_risk=section.pot_risk)


def bootstrap_auroc(labels: np.ndarray, scores: np.ndarray, resamples: int,
                    seed: int = 0) -> tuple[float, float]:
  """95% percentile interval of AUROC, resampling each class's windows."""
  positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
  if len(positives) == 0 or len(negatives) == 0:
    return float('nan'), float('nan')
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(resamples):
    index = np.r_[rng.choice(positives, len(positives)),
                  rng.choice(negatives, len(negatives))]
    values.append(metrics.auroc(labels[index], scores[index]))
  low, high = np.percentile(values, [2.5, 97.5])
  return float(low), float(high)


def score_rows(test_scores: np.ndarray, kinds: np.ndarray, fitted: dict[str, float],
               fpr: float) -> list[dict]:
  """Rows per kind from test scores and thresholds fitted on validation.

  Args:
    test_scores: [windows] test window scores.
    kinds: [windows] test window labels.
    fitted: strategy -> threshold, all fitted on validation.
    fpr: false-positive rate of the recall-at-FPR column.
  """
  rows = report.evaluate(test_scores, kinds, fitted['best_f1'])
  normal = kinds == events.NORMAL
  for row in rows:
    anomalous = (~normal if row['kind'] == 'all'
                 else kinds == events.kind_index(row['kind']))
    subset = normal | anomalous
    labels, scores = anomalous[subset], test_scores[subset]
    for strategy, threshold in fitted.items():
      at = metrics.precision_recall_f1(labels, scores, threshold)
      row.update({f'{strategy}_threshold': threshold, f'{strategy}_precision':
                  at.precision, f'{strategy}_recall': at.recall, f'{strategy}_f1': at.f1})
    oracle = metrics.best_f1_threshold(labels, scores)
    row['oracle_f1'] = metrics.precision_recall_f1(labels, scores, oracle).f1
    row['p_at_k'] = metrics.precision_at_k(labels, scores, int(labels.sum()))
    row['recall_at_fpr'] = metrics.recall_at_fpr(labels, scores, fpr)
    row['fpr_target'] = fpr
    row['auroc_ci_low'], row['auroc_ci_high'] = bootstrap_auroc(
        labels, scores, _BOOTSTRAP_RESAMPLES)
  return rows


def _sample_anomalous(kinds: np.ndarray, per_kind: int, seed: int) -> np.ndarray:
  """Sorted indices of up to `per_kind` anomalous windows of each kind."""
  rng = np.random.default_rng(seed)
  chosen = [rng.permutation(np.flatnonzero(kinds == kind))[:per_kind]
            for kind in np.unique(kinds[kinds > 0])]
  return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _mean(values: np.ndarray) -> float:
  values = values[~np.isnan(values)]
  return float(values.mean()) if len(values) else float('nan')


def evaluate_detector(detector: base.Detector, validation: windows_lib.Windows,
                      test: windows_lib.Windows, validation_scores: np.ndarray,
                      test_scores: np.ndarray,
                      section: ml_collections.ConfigDict | None = None,
                      seed: int = 0) -> tuple[list[dict], list[dict]]:
  """Result rows per kind and alert records of one fitted detector.

  Args:
    detector: the fitted detector (scored again on prefixes and occlusions).
    validation: validation windows; their labels fit the thresholds.
    test: test windows.
    validation_scores: [validation windows] scores.
    test_scores: [test windows] scores.
    section: `config.evaluation`; the defaults of configs/default.py if None.
    seed: picks the windows that are localised.

  Returns:
    (rows, alerts): the rows of `score_rows` with localisation and detection
    delay added, and the `top_alerts` highest-scoring test windows explained.
  """
  section = section or ml_collections.ConfigDict(DEFAULTS)
  validation_labels = validation.kind != events.NORMAL
  fitted = thresholds.fit_all(validation_labels, validation_scores,
                              threshold_params(section))
  rows = score_rows(test_scores, test.kind, fitted, section.fpr)

  # Localisation and time to detection on a sample of anomalous windows, and
  # the event scores of the top alerts, from one pass of event scoring.
  sample = _sample_anomalous(test.kind, section.explained_windows, seed)
  top = np.argsort(-test_scores, kind='stable')[:section.top_alerts]
  explained = np.unique(np.r_[sample, top]).astype(np.int64)
  scores_per_event = explain.event_scores(detector, test.take(explained))
  sampled_rows = np.searchsorted(explained, sample)
  localised = metrics.localisation(
      scores_per_event[sampled_rows], test.event_kind[sample] != events.NORMAL,
      test.mask[sample])
  sampled = test.take(sample)
  prefix, lengths = explain.prefix_scores(detector, sampled, section.prefix_step)
  delay = metrics.time_to_detection(prefix, lengths, explain.onsets(sampled),
                                    fitted['best_f1'])
  normal = np.flatnonzero(test.kind == events.NORMAL)
  normal = np.sort(np.random.default_rng(seed).permutation(normal)[
      :4 * section.explained_windows])
  normal_prefix, _ = explain.prefix_scores(detector, test.take(normal),
                                           section.prefix_step)
  false_alarms = (float(np.mean(np.any(normal_prefix >= fitted['best_f1'], axis=1)))
                  if len(normal) else float('nan'))
  for row in rows:
    chosen = (np.ones(len(sample), bool) if row['kind'] == 'all'
              else test.kind[sample] == events.kind_index(row['kind']))
    detected = ~np.isnan(delay[chosen])
    row['localisation'] = _mean(localised[chosen])
    row['detection_delay'] = (float(np.median(delay[chosen][detected]))
                              if detected.any() else float('nan'))
    row['stream_detected'] = float(detected.mean()) if chosen.any() else float('nan')
    row['explained_windows'] = int(chosen.sum())
    row['stream_false_alarms'] = false_alarms

  alerts = explain.alert_records(
      test, top, test_scores, scores_per_event[np.searchsorted(explained, top)],
      fitted['best_f1'], 'test', section.events_per_alert)
  for alert in alerts:
    position = np.searchsorted(explained, alert['window'])
    injected = test.event_kind[alert['window']] != events.NORMAL
    alert['localisation'] = (float(metrics.localisation(
        scores_per_event[position][None], injected[None],
        test.mask[alert['window']][None])[0]) if injected.any() else None)
    alert['detector'] = detector.name
  return rows, alerts

