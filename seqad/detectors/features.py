"""Fixed-length summary features of windows, the input of the classical baselines.

`window_features` needs nothing but the windows; `FeatureExtractor` adds
TF-IDF-weighted category counts whose document frequencies it learns from the
training windows. Every feature is computed over a window's real events only
(its mask), so padding never leaks in, and every group is a share or a bounded
rate, so windows of different lengths are comparable.

Groups of `window_features`, in column order (`feature_names` spells them out):

  event_type     [event types] share of views, carts, favs, buys.
  item_relation  [relations] share of each item relation (new item, same item,
                 seen item, and their repeated-action variants).
  gap            [gap buckets] share of each log2 time-gap bucket; bucket 0 is
                 the user's first event.
  pace           log1p(events per minute), the minutes estimated from each gap
                 bucket's midpoint in seconds (the last bucket, which also holds
                 every longer gap, counts as the midpoint of its nominal range, so
                 long idles are under-counted; that only matters for slow windows);
                 and the standard deviation of the gap bucket, low for metronomic
                 scripted traffic.
  category       distinct categories / events; share of out-of-vocabulary (0).
  hour           mean sine and mean cosine of the hour-of-day angle; their
                 magnitude is how concentrated in time of day the window is.
  length         real events / window length.
"""

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import text

from seqad.data import windows as windows_lib


def feature_names(vocab_sizes: dict[str, int]) -> list[str]:
  """Names of the [features] columns of `window_features`, in order."""
  names = [f'event_type_{v}' for v in range(vocab_sizes['event_type'])]
  names += [f'item_relation_{v}' for v in range(vocab_sizes['item_relation'])]
  names += [f'gap_{v}' for v in range(vocab_sizes['gap'])]
  names += ['log_events_per_minute', 'gap_bucket_std']
  names += ['distinct_category_share', 'oov_category_share']
  names += ['hour_sin', 'hour_cos', 'length_share']
  return names


def _shares(values: np.ndarray, mask: np.ndarray, size: int,
            events: np.ndarray) -> np.ndarray:
  """[windows, size] share of each token value among each window's real events.

  Args:
    values: [windows, time] int tokens in 0..size-1.
    mask: [windows, time] bool real events.
    size: number of token values.
    events: [windows, 1] real events per window, at least 1.
  """
  real = values[mask]
  if real.size and (real.min() < 0 or real.max() >= size):
    raise ValueError(f'Tokens must lie in 0..{size - 1}, got {real.min()}..{real.max()}.')
  rows = np.broadcast_to(np.arange(len(values))[:, None], values.shape)
  flat = rows[mask].astype(np.int64) * size + real
  counts = np.bincount(flat, minlength=len(values) * size).reshape(len(values), size)
  return counts / events


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """[windows] mean of `values` [windows, time] over `mask`; 0 where it is empty."""
  return (values * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)


def category_counts(windows: windows_lib.Windows,
                    num_categories: int) -> sparse.csr_matrix:
  """[windows, num_categories] sparse counts of each category bucket per window."""
  rows = np.broadcast_to(np.arange(len(windows))[:, None], windows.mask.shape)
  categories = windows.tokens['category'][windows.mask]
  # Converting COO to CSR sums the duplicate (window, category) entries.
  return sparse.coo_matrix(
      (np.ones(len(categories)), (rows[windows.mask], categories)),
      shape=(len(windows), num_categories)).tocsr()


def window_features(windows: windows_lib.Windows,
                    vocab_sizes: dict[str, int]) -> np.ndarray:
  """Summary features that need no fitting; see the module docstring.

  Args:
    windows: the windows; `kind` and `event_kind` are never read.
    vocab_sizes: field -> number of token values.

  Returns:
    [windows, features] float32, columns as `feature_names(vocab_sizes)`.
  """
  mask = windows.mask
  tokens = windows.tokens
  events = np.maximum(mask.sum(axis=1, keepdims=True), 1)
  groups = [_shares(tokens[field], mask, vocab_sizes[field], events)
            for field in ('event_type', 'item_relation', 'gap')]

  # Bucket b >= 1 holds the integer gaps s with 2**(b-1) <= 1 + s < 2**b, whose
  # midpoint is 1.5 * 2**(b-1) - 1.5 seconds; bucket 0 (first event) has no gap.
  gap = tokens['gap'].astype(np.float64)
  has_gap = mask & (tokens['gap'] > 0)
  midpoint_s = np.where(has_gap, 1.5 * np.exp2(gap - 1) - 1.5, 0.0)
  minutes = midpoint_s.sum(axis=1) / 60.0
  # One second is added so that windows of zero-second gaps get a finite rate.
  per_minute = has_gap.sum(axis=1) / (minutes + 1.0 / 60.0)
  gap_mean = _masked_mean(gap, has_gap)
  gap_std = np.sqrt(_masked_mean((gap - gap_mean[:, None]) ** 2, has_gap))

  counts = category_counts(windows, vocab_sizes['category'])
  distinct = np.diff(counts.indptr) / events[:, 0]
  oov = _masked_mean(tokens['category'] == 0, mask)

  angle = tokens['hour'] * (2 * np.pi / 24)
  length = mask.sum(axis=1) / mask.shape[1]

  groups.append(np.stack([np.log1p(per_minute), gap_std, distinct, oov,
                          _masked_mean(np.sin(angle), mask),
                          _masked_mean(np.cos(angle), mask), length], axis=1))
  return np.concatenate(groups, axis=1).astype(np.float32)


class FeatureExtractor:
  """`window_features` plus TF-IDF-weighted category-bucket counts.

  The category part treats a window as a document whose terms are its category
  buckets: counts weighted by inverse document frequency learnt on the training
  windows (scikit-learn's smoothed idf), each row L2-normalised, so a window
  spent in categories that few training windows visit stands out.

  Attributes:
    vocab_sizes: field -> number of token values.
    category_tfidf: whether to append the [category buckets] TF-IDF columns.
  """

  def __init__(self, vocab_sizes: dict[str, int], category_tfidf: bool = True):
    self.vocab_sizes = dict(vocab_sizes)
    self.category_tfidf = category_tfidf
    self.tfidf = None

  @property
  def num_features(self) -> int:
    extra = self.vocab_sizes['category'] if self.category_tfidf else 0
    return len(feature_names(self.vocab_sizes)) + extra

  def fit(self, windows: windows_lib.Windows) -> 'FeatureExtractor':
    """Learns the category document frequencies of `windows`; returns self."""
    if self.category_tfidf:
      counts = category_counts(windows, self.vocab_sizes['category'])
      self.tfidf = text.TfidfTransformer(norm='l2', smooth_idf=True).fit(counts)
    return self

  def transform(self, windows: windows_lib.Windows) -> np.ndarray:
    """[windows, num_features] float32 features of `windows`."""
    features = window_features(windows, self.vocab_sizes)
    if not self.category_tfidf:
      return features
    if self.tfidf is None:
      raise RuntimeError('FeatureExtractor.transform called before fit.')
    counts = category_counts(windows, self.vocab_sizes['category'])
    weighted = self.tfidf.transform(counts).toarray().astype(np.float32)
    return np.concatenate([features, weighted], axis=1)
