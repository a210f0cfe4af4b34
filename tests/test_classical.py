"""Classical baselines: window features, scikit-learn detectors, n-grams and rules."""

import collections
import dataclasses
import math

import numpy as np
import pytest

from conftest import VOCAB_SIZES, make_windows
from seqad import metrics
from seqad.detectors import classical
from seqad.detectors import features
from seqad.detectors import rules

LENGTH = 12
NUM_KEYS = VOCAB_SIZES['event_type'] * VOCAB_SIZES['category']


def _shopper_windows(seed: int, num_windows: int):
  """Noisy normal shoppers: mostly views that drift between categories 1..5.

  Gaps are 7 seconds or more (buckets 4..7), hours are daytime, buys follow a
  view of the same item, and the last events of some windows are padding.
  """
  rng = np.random.default_rng(seed)
  shape = (num_windows, LENGTH)
  event_type = rng.choice(4, size=shape, p=[0.6, 0.15, 0.1, 0.15])
  moves = rng.random(shape) < 0.3
  category = 1 + np.cumsum(moves * rng.integers(1, 5, shape), axis=1) % 5
  relation = np.where(event_type == 0, rng.choice([0, 2], size=shape), 1)
  tokens = {
      'event_type': event_type,
      'category': category,
      'gap': rng.integers(4, VOCAB_SIZES['gap'], shape),
      'hour': rng.integers(9, 23, shape),
      'item_relation': relation,
  }
  lengths = rng.integers(8, LENGTH + 1, num_windows)
  mask = np.arange(LENGTH)[None, :] < lengths[:, None]
  return make_windows({f: np.where(mask, v, 0) for f, v in tokens.items()}, mask)


def _storm_windows(num_windows: int, *, buys: bool):
  """All-buy windows (blind or repeated buys) or 1..2-second view storms."""
  shape = (num_windows, LENGTH)
  position = np.broadcast_to(np.arange(LENGTH), shape)
  tokens = {
      'event_type': np.full(shape, 3 if buys else 0),
      'category': np.full(shape, 2),
      'gap': np.full(shape, 5 if buys else 2),
      'hour': np.full(shape, 14),
      'item_relation': np.where(position % 2 == 0, 0, 3),
  }
  return make_windows(tokens, np.ones(shape, bool))


def _concat(*parts):
  return make_windows(
      {f: np.concatenate([p.tokens[f] for p in parts]) for f in parts[0].tokens},
      np.concatenate([p.mask for p in parts]),
      kind=np.concatenate([p.kind for p in parts]))


@pytest.fixture(scope='module')
def train():
  return _shopper_windows(0, 200)


@pytest.fixture(scope='module')
def labelled_test():
  """Normal shoppers (label 0) followed by buy storms and view storms (label 1)."""
  normal = _shopper_windows(1, 60)
  storms = [_storm_windows(5, buys=True), _storm_windows(5, buys=False)]
  windows = _concat(normal, *storms)
  labels = np.r_[np.zeros(60, bool), np.ones(10, bool)]
  return windows, labels


def _feature_detectors():
  return [
      classical.IsolationForestDetector(VOCAB_SIZES, n_estimators=100, seed=0),
      classical.LOFDetector(VOCAB_SIZES, n_neighbors=10),
      classical.PCADetector(VOCAB_SIZES),
      rules.RuleDetector(VOCAB_SIZES),
      classical.ECODDetector(VOCAB_SIZES),
  ]


def _all_detectors():
  return _feature_detectors() + [classical.NGramDetector(VOCAB_SIZES)]


@pytest.mark.parametrize('detector', _feature_detectors(), ids=lambda d: d.name)
def test_feature_detectors_rank_storms_above_normal_shoppers(detector, train,
                                                              labelled_test):
  windows, labels = labelled_test
  scores = detector.fit(train).decision_function(windows)
  assert scores.shape == (len(windows),) and scores.dtype == np.float64
  assert np.all(np.isfinite(scores))
  assert metrics.auroc(labels, scores) >= 0.99
  assert detector.timings['train_s'] > 0 and detector.timings['train_seq_per_s'] > 0


def test_ngram_ranks_storms_above_a_learnt_cycle(pattern_windows):
  # The shoppers above draw event types independently, so a buy storm is a
  # likely sequence to a model of them; a strict view-view-cart-buy cycle is not.
  unseen = _storm_windows(5, buys=False)
  unseen.tokens['category'][:] = 0
  normal = pattern_windows.take(np.arange(0, 64, 2))
  windows = _concat(normal, _storm_windows(5, buys=True), unseen)
  labels = np.r_[np.zeros(len(normal), bool), np.ones(10, bool)]
  detector = classical.NGramDetector(VOCAB_SIZES, n=3).fit(pattern_windows)
  assert metrics.auroc(labels, detector.decision_function(windows)) == 1.0
  assert detector.timings['train_seq_per_s'] > 0


def test_scores_are_deterministic(train, labelled_test):
  windows, _ = labelled_test
  for first, second in zip(_all_detectors(), _all_detectors()):
    np.testing.assert_array_equal(first.fit(train).decision_function(windows),
                                  second.fit(train).decision_function(windows))


def test_isolation_forest_seed_changes_scores(train, labelled_test):
  windows, _ = labelled_test
  scores = [classical.IsolationForestDetector(VOCAB_SIZES, n_estimators=20, seed=seed)
            .fit(train).decision_function(windows) for seed in (0, 1)]
  assert not np.array_equal(*scores)


def _with_garbage_labels(windows, seed):
  rng = np.random.default_rng(seed)
  return dataclasses.replace(
      windows, kind=rng.integers(-1, 4, len(windows)).astype(np.int8),
      event_kind=rng.integers(0, 4, windows.mask.shape).astype(np.int8))


@pytest.mark.parametrize('detector', _all_detectors(), ids=lambda d: d.name)
def test_labels_are_never_read(detector, train, labelled_test):
  windows, _ = labelled_test
  expected = detector.fit(train).decision_function(windows)
  garbage = detector.fit(_with_garbage_labels(train, 0)).decision_function(
      _with_garbage_labels(windows, 1))
  np.testing.assert_array_equal(garbage, expected)


def test_features_shape_finite_and_shares(train, labelled_test):
  windows, _ = labelled_test
  values = features.window_features(windows, VOCAB_SIZES)
  names = features.feature_names(VOCAB_SIZES)
  assert values.shape == (len(windows), len(names)) and values.dtype == np.float32
  assert np.all(np.isfinite(values))
  for field in ('event_type', 'item_relation', 'gap'):
    columns = [names.index(f'{field}_{v}') for v in range(VOCAB_SIZES[field])]
    np.testing.assert_allclose(values[:, columns].sum(axis=1), 1.0, rtol=1e-6)

  extractor = features.FeatureExtractor(VOCAB_SIZES).fit(train)
  full = extractor.transform(windows)
  assert full.shape == (len(windows), extractor.num_features)
  np.testing.assert_array_equal(full[:, :len(names)], values)
  np.testing.assert_allclose(np.linalg.norm(full[:, len(names):], axis=1), 1.0,
                             rtol=1e-5)


def test_features_ignore_padding_values(labelled_test):
  windows, _ = labelled_test
  rng = np.random.default_rng(0)
  noisy = {f: np.where(windows.mask, v, rng.integers(0, VOCAB_SIZES[f], v.shape))
           for f, v in windows.tokens.items()}
  extractor = features.FeatureExtractor(VOCAB_SIZES).fit(windows)
  np.testing.assert_array_equal(
      extractor.transform(make_windows(noisy, windows.mask)),
      extractor.transform(windows))


def test_pace_and_category_features_of_a_hand_made_window():
  tokens = {'event_type': [[0, 0, 1, 0]], 'category': [[1, 1, 0, 0]],
            'gap': [[0, 3, 3, 7]], 'hour': [[6, 6, 6, 9]],
            'item_relation': [[0, 1, 1, 2]]}
  mask = np.array([[True, True, True, False]])
  row = dict(zip(features.feature_names(VOCAB_SIZES),
                 features.window_features(make_windows(tokens, mask), VOCAB_SIZES)[0]))
  # Two gaps of bucket 3 (3..6 s, midpoint 4.5 s), plus the one-second floor.
  assert row['log_events_per_minute'] == pytest.approx(np.log1p(2 / (10 / 60)))
  assert row['gap_bucket_std'] == 0
  assert row['distinct_category_share'] == pytest.approx(2 / 3)
  assert row['oov_category_share'] == pytest.approx(1 / 3)
  assert row['hour_sin'] == pytest.approx(1.0)  # Hour 6 is a quarter turn.
  assert row['hour_cos'] == pytest.approx(0.0, abs=1e-6)
  assert row['length_share'] == pytest.approx(3 / 4)
  assert row['gap_0'] == pytest.approx(1 / 3) and row['gap_3'] == pytest.approx(2 / 3)


def test_pca_residual_equals_numpy_svd_reference(train, labelled_test):
  windows, _ = labelled_test
  detector = classical.PCADetector(VOCAB_SIZES, variance_explained=0.9).fit(train)

  raw_train = detector.extractor.transform(train).astype(np.float64)
  raw = detector.extractor.transform(windows).astype(np.float64)
  mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
  std[std == 0] = 1.0
  standard_train, standard = (raw_train - mean) / std, (raw - mean) / std
  center = standard_train.mean(axis=0)
  _, singular, right = np.linalg.svd(standard_train - center, full_matrices=False)
  ratio = np.cumsum(singular ** 2) / np.sum(singular ** 2)
  kept = 1 + next(k for k, r in enumerate(ratio) if r > 0.9)
  normal_space = right[:kept]
  residual = (standard - center) - (standard - center) @ normal_space.T @ normal_space

  assert detector.pca.n_components_ == kept
  np.testing.assert_allclose(detector.decision_function(windows),
                             np.sum(residual ** 2, axis=1), rtol=1e-6, atol=1e-9)


def _reference_ngram_scores(train, windows, n, smoothing, backoff_weight):
  """Python-loop n-gram model; the start symbol is NUM_KEYS."""
  def sequences(w):
    for row in range(len(w)):
      keys = (w.tokens['event_type'][row] * VOCAB_SIZES['category']
              + w.tokens['category'][row])[w.mask[row]]
      yield [NUM_KEYS] * (n - 1) + [int(k) for k in keys]

  grams, contexts = collections.Counter(), collections.Counter()
  for padded in sequences(train):
    for t in range(n - 1, len(padded)):
      for m in range(1, n + 1):
        grams[tuple(padded[t - m + 1:t + 1])] += 1
        contexts[tuple(padded[t - m + 1:t])] += 1

  def prob(gram):
    if len(gram) == 1:
      total = contexts[()]
      return (grams[gram] + smoothing) / (total + smoothing * NUM_KEYS)
    lower = prob(gram[1:])
    return (grams[gram] + backoff_weight * lower) / (contexts[gram[:-1]] + backoff_weight)

  scores = []
  for padded in sequences(windows):
    nll = [-math.log(prob(tuple(padded[t - n + 1:t + 1])))
           for t in range(n - 1, len(padded))]
    scores.append(sum(nll) / max(len(nll), 1))
  return np.array(scores)


@pytest.mark.parametrize('n', [1, 2, 3])
def test_ngram_equals_python_loop_reference(n):
  rng = np.random.default_rng(n)

  def random_windows(num):
    tokens = {f: rng.integers(0, 3 if f == 'category' else size, (num, 6))
              for f, size in VOCAB_SIZES.items()}
    mask = np.arange(6)[None, :] < rng.integers(1, 7, num)[:, None]
    return make_windows(tokens, mask)

  train, windows = random_windows(30), random_windows(10)
  windows.tokens['category'][0, 0] = 5  # A key never seen in training.
  detector = classical.NGramDetector(VOCAB_SIZES, n=n, smoothing=0.2, backoff_weight=1.5)
  np.testing.assert_allclose(
      detector.fit(train).decision_function(windows),
      _reference_ngram_scores(train, windows, n, 0.2, 1.5), rtol=1e-10)


def test_rule_statistics_and_scores_of_a_hand_made_window():
  tokens = {'event_type': [[0, 3, 3, 1, 0]], 'category': [[1, 1, 1, 1, 0]],
            'gap': [[0, 2, 5, 1, 9]], 'hour': [[9] * 5],
            'item_relation': [[0, 0, 3, 1, 0]]}
  window = make_windows(tokens, np.array([[True, True, True, True, False]]))
  detector = rules.RuleDetector(VOCAB_SIZES, fast_gap_bucket=2)
  np.testing.assert_allclose(detector.statistics(window),
                             [[2 / 4, 1 / 4, 2 / 4, 1 / 4, 1 / 4]])

  # With a normal level set by hand, the largest share (0.5) decides the score.
  detector.center = np.full(len(rules.RULES), 0.45)
  detector.spread = np.full(len(rules.RULES), 0.36)
  assert detector.decision_function(window)[0] == pytest.approx((0.5 - 0.45) / 0.36)


def test_rule_fit_learns_median_and_quantile_spread(train):
  detector = rules.RuleDetector(VOCAB_SIZES, quantile=0.9, min_spread=0.01).fit(train)
  values = detector.statistics(train)
  np.testing.assert_allclose(detector.center, np.median(values, axis=0))
  spread = np.maximum(np.quantile(values, 0.9, axis=0) - detector.center, 0.01)
  np.testing.assert_allclose(detector.spread, spread)
  expected = ((values - detector.center) / spread).max(axis=1)
  np.testing.assert_allclose(detector.decision_function(train), expected)


def test_validation_rules_cut_each_rule_at_its_best_validation_f1(train):
  # Validation: shoppers, then buy storms (kind 2) and view storms (kind 1).
  normal = _shopper_windows(2, 80)
  buys, views = _storm_windows(4, buys=True), _storm_windows(4, buys=False)
  validation = _concat(normal, buys, views)
  validation = dataclasses.replace(
      validation, kind=np.r_[np.zeros(80), np.full(4, 2), np.full(4, 1)].astype(np.int8))
  detector = rules.ValidationRuleDetector(VOCAB_SIZES).fit(train, validation)
  values = detector.statistics(validation)
  for rule in range(len(rules.RULES)):
    f1s = []
    for kind in (1, 2):
      subset = (validation.kind == 0) | (validation.kind == kind)
      labels = validation.kind[subset] == kind
      column = values[subset, rule]
      f1s.append(max(metrics.precision_recall_f1(labels, column, t).f1
                     for t in np.unique(column)))
    subset = validation.kind == 0
    best_kind = 1 + int(np.argmax(f1s))
    subset |= validation.kind == best_kind
    achieved = metrics.precision_recall_f1(
        validation.kind[subset] == best_kind, values[subset, rule], detector.cuts[rule]).f1
    assert achieved == pytest.approx(max(f1s))
  # The fast-events rule separates view storms perfectly: storms score >= 1.
  scores = detector.decision_function(validation)
  assert np.all(scores[80:] >= 1) and metrics.auroc(validation.kind > 0, scores) == 1.0
  with pytest.raises(ValueError, match='labelled anomalies'):
    rules.ValidationRuleDetector(VOCAB_SIZES).fit(train, normal)
