"""First-order Markov chain over event keys: the classical sequence baseline."""

import time

import numpy as np

from seqad.data import windows as windows_lib
from seqad.detectors import base


class MarkovDetector(base.Detector):
  """Scores a window by the mean negative log-likelihood of its transitions.

  States are event keys, (event type, category bucket), the same targets the
  neural next-event model predicts. A window's first event is scored from a
  start state. Transition probabilities use additive (Lidstone) smoothing, so
  unseen transitions get a finite, large surprise.

  Attributes:
    smoothing: pseudo-count added to every transition.
  """

  name = 'markov'

  def __init__(self, vocab_sizes: dict[str, int], smoothing: float = 0.1):
    super().__init__()
    if smoothing <= 0:
      raise ValueError(f'smoothing must be positive, got {smoothing}.')
    self.num_categories = vocab_sizes['category']
    self.num_keys = vocab_sizes['event_type'] * self.num_categories
    self.smoothing = smoothing
    self.log_probs = None  # [num_keys + 1 (start), num_keys]

  def _transitions(self, windows: windows_lib.Windows):
    """(from, to) key pairs of all real events, start state = num_keys."""
    keys = windows.tokens['event_type'] * self.num_categories + windows.tokens['category']
    previous = np.concatenate(
        [np.full((len(windows), 1), self.num_keys), keys[:, :-1]], axis=1)
    return previous, keys

  def fit(self, train, validation=None):
    del validation  # No hyperparameters are tuned here.
    start = time.perf_counter()
    previous, keys = self._transitions(train)
    counts = np.zeros((self.num_keys + 1, self.num_keys), np.float64)
    np.add.at(counts, (previous[train.mask], keys[train.mask]), 1.0)
    counts += self.smoothing
    self.log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
    elapsed = time.perf_counter() - start
    self.timings = {'train_s': elapsed, 'train_seq_per_s': len(train) / elapsed}
    return self

  def decision_function(self, windows):
    if self.log_probs is None:
      raise RuntimeError('MarkovDetector.decision_function called before fit.')
    previous, keys = self._transitions(windows)
    event_nll = -self.log_probs[previous, keys]
    return (event_nll * windows.mask).sum(axis=1) / np.maximum(windows.mask.sum(axis=1), 1)
