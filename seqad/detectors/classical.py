"""Classical anomaly detectors: scikit-learn models on window features, and n-grams.

Three detectors score the fixed-length summary of a window (`features.py`),
standardised with statistics of the training windows:

  IsolationForestDetector  isolation depth in random trees (Liu et al., 2008).
  LOFDetector              local density against the training windows' neighbours
                           (Breunig et al., 2000), in novelty mode.
  PCADetector              squared prediction error in the residual subspace of
                           PCA, as loglizer's PCA detector for log sequences (Xu et
                           al., 2009): large when a window breaks the correlations
                           that normal windows share.

`NGramDetector` instead reads the event sequence, like `markov.MarkovDetector`,
with a longer context and a smoothing that backs off to shorter contexts.
"""

import time

import numpy as np
from sklearn import decomposition
from sklearn import ensemble
from sklearn import neighbors
from sklearn import preprocessing

from seqad.data import windows as windows_lib
from seqad.detectors import base
from seqad.detectors import features as features_lib


def _fit_timings(start: float, num_windows: int) -> dict[str, float]:
  elapsed = time.perf_counter() - start
  return {'train_s': elapsed, 'train_seq_per_s': num_windows / max(elapsed, 1e-9)}


class _FeatureDetector(base.Detector):
  """Shared plumbing: window features, standardised on the training windows."""

  def __init__(self, vocab_sizes: dict[str, int], category_tfidf: bool):
    super().__init__()
    self.extractor = features_lib.FeatureExtractor(vocab_sizes, category_tfidf)
    self.scaler = None

  def _fit_features(self, train: windows_lib.Windows) -> np.ndarray:
    """[train windows, features] float64 standardised training features."""
    values = self.extractor.fit(train).transform(train).astype(np.float64)
    # A feature constant in training keeps scale 1 (scikit-learn's rule), so any
    # deviation from it at scoring time still shows up in raw units.
    self.scaler = preprocessing.StandardScaler().fit(values)
    return self.scaler.transform(values)

  def _features(self, windows: windows_lib.Windows) -> np.ndarray:
    """[windows, features] float64 standardised features."""
    if self.scaler is None:
      raise RuntimeError(f'{type(self).__name__}.decision_function called before fit.')
    return self.scaler.transform(self.extractor.transform(windows).astype(np.float64))


class IsolationForestDetector(_FeatureDetector):
  """Isolation forest on standardised window features.

  The score is the forest's anomaly score s(x) = 2 ** (-E[depth] / c(n)) in
  (0, 1], scikit-learn's `-score_samples`: windows that random axis-aligned
  splits isolate in few steps score high.

  Args:
    vocab_sizes: field -> number of token values.
    n_estimators: trees in the forest.
    max_samples: training windows drawn per tree (capped at the number of
      windows), the subsample size of the original paper.
    max_features: fraction of features each tree may split on.
    category_tfidf: whether the TF-IDF category columns are among the features.
    seed: seeds the trees' subsamples and splits; same seed, same scores.
  """

  name = 'iforest'

  def __init__(self, vocab_sizes: dict[str, int], *, n_estimators: int = 200,
               max_samples: int = 256, max_features: float = 1.0,
               category_tfidf: bool = True, seed: int = 0):
    super().__init__(vocab_sizes, category_tfidf)
    self.n_estimators = n_estimators
    self.max_samples = max_samples
    self.max_features = max_features
    self.seed = seed
    self.forest = None

  def fit(self, train, validation=None):
    del validation  # Nothing is tuned on validation.
    start = time.perf_counter()
    values = self._fit_features(train)
    self.forest = ensemble.IsolationForest(
        n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(values)),
        max_features=self.max_features, random_state=self.seed).fit(values)
    self.timings = _fit_timings(start, len(train))
    return self

  def decision_function(self, windows):
    return -self.forest.score_samples(self._features(windows)).astype(np.float64)


class LOFDetector(_FeatureDetector):
  """Local outlier factor of a window against the training windows.

  The score is the LOF, scikit-learn's `-score_samples` with `novelty=True`: the
  ratio of the training neighbours' local density to the window's own, about 1
  inside normal clusters and large away from them. It is deterministic, so there
  is no seed.

  Args:
    vocab_sizes: field -> number of token values.
    n_neighbors: neighbours that define local density (capped at training
      windows - 1 by scikit-learn).
    metric: distance on standardised features, any scikit-learn metric name.
    category_tfidf: whether the TF-IDF category columns are among the features.
  """

  name = 'lof'

  def __init__(self, vocab_sizes: dict[str, int], *, n_neighbors: int = 20,
               metric: str = 'euclidean', category_tfidf: bool = True):
    super().__init__(vocab_sizes, category_tfidf)
    self.n_neighbors = n_neighbors
    self.metric = metric
    self.lof = None

  def fit(self, train, validation=None):
    del validation  # Nothing is tuned on validation.
    start = time.perf_counter()
    values = self._fit_features(train)
    self.lof = neighbors.LocalOutlierFactor(
        n_neighbors=min(self.n_neighbors, len(values) - 1), metric=self.metric,
        novelty=True).fit(values)
    self.timings = _fit_timings(start, len(train))
    return self

  def decision_function(self, windows):
    return -self.lof.score_samples(self._features(windows)).astype(np.float64)


class PCADetector(_FeatureDetector):
  """Squared prediction error (SPE) in the residual subspace of PCA.

  PCA on the standardised training features keeps the fewest leading components
  whose explained variance ratio sums to more than `variance_explained` (the
  rule of scikit-learn's fractional `n_components`); they span the normal
  subspace. With P [features, kept] those components and mu the training mean, a
  window with features x scores SPE = ||(I - P P^T)(x - mu)||^2, the squared
  length of what the normal subspace cannot explain.

  Args:
    vocab_sizes: field -> number of token values.
    variance_explained: in (0, 1), the variance the normal subspace must explain.
    category_tfidf: whether the TF-IDF category columns are among the features.
  """

  name = 'pca'

  def __init__(self, vocab_sizes: dict[str, int], *, variance_explained: float = 0.95,
               category_tfidf: bool = True):
    super().__init__(vocab_sizes, category_tfidf)
    if not 0 < variance_explained < 1:
      raise ValueError(f'variance_explained must be in (0, 1), got {variance_explained}.')
    self.variance_explained = variance_explained
    self.pca = None

  def fit(self, train, validation=None):
    del validation  # Nothing is tuned on validation.
    start = time.perf_counter()
    values = self._fit_features(train)
    # The full SVD is exact and deterministic, so no seed is needed.
    self.pca = decomposition.PCA(n_components=self.variance_explained,
                                 svd_solver='full').fit(values)
    self.timings = _fit_timings(start, len(train))
    self.timings['num_components'] = int(self.pca.n_components_)
    return self

  def decision_function(self, windows):
    centered = self._features(windows) - self.pca.mean_
    components = self.pca.components_  # [kept, features], orthonormal rows
    residual = centered - (centered @ components.T) @ components
    return np.sum(residual ** 2, axis=1)


class ECODDetector(_FeatureDetector):
  """Empirical-cumulative-distribution outlier detection (ECOD, Li et al., 2022).

  PyOD's ECOD: for every feature, the tail probabilities of a window's value
  under the training windows' empirical distribution (left, right, and the tail
  that the feature's skewness points to); the score sums -log of those tail
  probabilities over features. No hyperparameters and deterministic, so no seed.

  Args:
    vocab_sizes: field -> number of token values.
    category_tfidf: whether the TF-IDF category columns are among the features.
  """

  name = 'ecod'

  def __init__(self, vocab_sizes: dict[str, int], *, category_tfidf: bool = False):
    super().__init__(vocab_sizes, category_tfidf)
    self.ecod = None

  def fit(self, train, validation=None):
    del validation  # Nothing is tuned on validation.
    from pyod.models import ecod  # pylint: disable=g-import-not-at-top
    start = time.perf_counter()
    values = self._fit_features(train)
    self.ecod = ecod.ECOD().fit(values)
    self.timings = _fit_timings(start, len(train))
    return self

  def decision_function(self, windows):
    if self.ecod is None:
      raise RuntimeError('ECODDetector.decision_function called before fit.')
    return np.asarray(self.ecod.decision_function(self._features(windows)), np.float64)


def _lookup(codes: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
  """Counts [queries shape] of `queries` in a sorted code table; 0 where absent."""
  if len(codes) == 0:
    return np.zeros(queries.shape, np.float64)
  index = np.minimum(np.searchsorted(codes, queries), len(codes) - 1)
  return np.where(codes[index] == queries, counts[index], 0).astype(np.float64)


class NGramDetector(base.Detector):
  """Scores a window by the mean negative log-likelihood of its events under n-grams.

  Events are keys w = event type * categories + category bucket, as in
  `markov.MarkovDetector`. Before a window's first event the context is padded
  with a start symbol, so the first events are scored from shorter real
  contexts. Probabilities back off recursively (interpolated Dirichlet-prior
  smoothing, MacKay & Peto 1995): with c(.) training counts,

    P_1(w)     = (c(w) + smoothing) / (N + smoothing * keys)
    P_m(w | h) = (c(h, w) + backoff_weight * P_{m-1}(w | h')) / (c(h) + backoff_weight)

  where h holds the m - 1 events before w and h' drops the oldest of them. A
  context never seen in training (c(h) = 0) falls back to P_{m-1} exactly; a
  seen one trusts its own counts more the more often it was seen. Every P_m is a
  normalised distribution over keys, so scores of different windows compare.

  Counting is vectorised: each m-gram is a mixed-radix int64 code (radix keys +
  1, the start symbol included) and np.unique counts the codes of all windows.

  Args:
    vocab_sizes: field -> number of token values.
    n: the order; the longest context holds n - 1 events. n = 2 is a Markov chain.
    smoothing: additive pseudo-count per key in the unigram model.
    backoff_weight: pseudo-count mass each context lends to its shorter context.
  """

  name = 'ngram'

  def __init__(self, vocab_sizes: dict[str, int], *, n: int = 3, smoothing: float = 0.1,
               backoff_weight: float = 1.0):
    super().__init__()
    if n < 1 or smoothing <= 0 or backoff_weight <= 0:
      raise ValueError(f'Need n >= 1 and positive smoothing and backoff_weight, got '
                       f'{n}, {smoothing} and {backoff_weight}.')
    self.num_categories = vocab_sizes['category']
    self.num_keys = vocab_sizes['event_type'] * self.num_categories
    if (self.num_keys + 1) ** n >= 2 ** 63:
      raise ValueError(f'{n}-grams over {self.num_keys} keys overflow int64 codes.')
    self.n = n
    self.smoothing = smoothing
    self.backoff_weight = backoff_weight
    self.unigram = None  # [keys] P_1
    # Order m -> sorted unique (m-gram codes, counts, context codes, counts).
    self.tables: dict[int, tuple[np.ndarray, ...]] = {}

  def _codes(self, windows: windows_lib.Windows):
    """Keys [windows, time] and, per order m >= 2, (context, m-gram) code arrays."""
    keys = (windows.tokens['event_type'].astype(np.int64) * self.num_categories
            + windows.tokens['category'])
    radix = self.num_keys + 1
    padded = np.concatenate(
        [np.full((len(windows), self.n - 1), self.num_keys, np.int64), keys], axis=1)
    length = keys.shape[1]

    codes = {}
    context = np.zeros_like(keys)
    for m in range(2, self.n + 1):
      # The event m - 1 steps back (padded column t + n - m) becomes the most
      # significant digit; the latest event stays the least significant one.
      oldest = padded[:, self.n - m:self.n - m + length]
      context = oldest * radix ** (m - 2) + context
      codes[m] = (context, context * radix + keys)
    return keys, codes

  def fit(self, train, validation=None):
    del validation  # Nothing is tuned on validation.
    start = time.perf_counter()
    keys, codes = self._codes(train)
    mask = train.mask
    counts = np.bincount(keys[mask], minlength=self.num_keys).astype(np.float64)
    self.unigram = (counts + self.smoothing) / (counts.sum()
                                                + self.smoothing * self.num_keys)
    self.tables = {}
    for m, (context, gram) in codes.items():
      gram_codes, gram_counts = np.unique(gram[mask], return_counts=True)
      context_codes, context_counts = np.unique(context[mask], return_counts=True)
      self.tables[m] = (gram_codes, gram_counts, context_codes, context_counts)
    self.timings = _fit_timings(start, len(train))
    return self

  def event_log_probs(self, windows: windows_lib.Windows) -> np.ndarray:
    """[windows, time] float64 log P_n of each event; 0 at padding."""
    if self.unigram is None:
      raise RuntimeError('NGramDetector called before fit.')
    keys, codes = self._codes(windows)
    probs = self.unigram[keys]
    for m in range(2, self.n + 1):
      context, gram = codes[m]
      gram_codes, gram_counts, context_codes, context_counts = self.tables[m]
      joint = _lookup(gram_codes, gram_counts, gram)
      total = _lookup(context_codes, context_counts, context)
      probs = (joint + self.backoff_weight * probs) / (total + self.backoff_weight)
    return np.where(windows.mask, np.log(probs), 0.0)

  def decision_function(self, windows):
    event_nll = -self.event_log_probs(windows)
    return event_nll.sum(axis=1) / np.maximum(windows.mask.sum(axis=1), 1)
