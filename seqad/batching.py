"""Cutting `Windows` into fixed-shape batches for jitted functions."""

import functools
from typing import Iterator

import numpy as np

from seqad.data import windows as windows_lib


def gather(windows: windows_lib.Windows, index: np.ndarray,
           with_labels: bool = False) -> dict:
  """The model inputs of windows[index]: {'tokens': {field: [b, t]}, 'mask': [b, t]}.

  `index` may have leading axes of its own (e.g. [seeds, b]); every array then
  has them too. Labels ('label' [b] float32, 1 for anomalous windows) are added
  only when asked for: only supervised training may read them.
  """
  batch = {
      'tokens': {field: values[index] for field, values in windows.tokens.items()},
      'mask': windows.mask[index],
  }
  if with_labels:
    batch['label'] = (windows.kind[index] > 0).astype(np.float32)
  return batch


def with_row_ids(batch: dict, batch_axis: int = 0) -> dict:
  """`batch` plus 'row' [..., b] int32: each row's position in the batch.

  Objectives derive per-row random draws from it, so a row gets the same
  draws however the batch is split across devices or micro-batches.
  """
  shape = batch['mask'].shape[:batch_axis + 1]
  rows = np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)
  return {**batch, 'row': np.ascontiguousarray(rows)}


def padded_batches(windows: windows_lib.Windows,
                   batch_size: int) -> Iterator[tuple[dict, int]]:
  """Yields (batch, valid) covering every window once, in order.

  Every batch has exactly `batch_size` rows so a jitted consumer compiles once;
  the last batch is filled with fully masked rows, and `valid` says how many
  leading rows are real.
  """
  for begin in range(0, len(windows), batch_size):
    index = np.arange(begin, min(begin + batch_size, len(windows)))
    valid = len(index)
    batch = gather(windows, index)
    if valid < batch_size:
      pad = batch_size - valid
      batch = {
          'tokens': {f: np.pad(v, ((0, pad), (0, 0))) for f, v in batch['tokens'].items()},
          'mask': np.pad(batch['mask'], ((0, pad), (0, 0))),
      }
    yield batch, valid


class BatchOrder:
  """Training batches' window indices as a pure function of the step.

  Epoch e is the permutation `default_rng([seed, e]).permutation(num_windows)`;
  epochs are joined end to end and cut into batches of `batch_size`, so batch
  s holds positions [s * batch_size, (s + 1) * batch_size) of that stream.
  Every window is seen once per epoch, a batch may straddle two epochs (this
  also serves training sets smaller than one batch), and a resumed run picks
  up at any step without replaying the stream.
  """

  def __init__(self, num_windows: int, batch_size: int, seed: int):
    if num_windows == 0:
      raise ValueError('Cannot draw training batches from zero windows.')
    if batch_size < 1:
      raise ValueError(f'batch_size must be positive, got {batch_size}.')
    self.num_windows = num_windows
    self.batch_size = batch_size
    self.seed = seed

  @functools.lru_cache(maxsize=4)
  def _epoch(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)

  def __call__(self, step: int) -> np.ndarray:
    """[batch_size] window indices of training step `step` (from 0)."""
    positions = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
    epochs, offsets = np.divmod(positions, self.num_windows)
    index = np.empty(self.batch_size, np.int64)
    for epoch in np.unique(epochs):
      here = epochs == epoch
      index[here] = self._epoch(int(epoch))[offsets[here]]
    return index


# Field vocabularies of the default config (128 category buckets + OOV), for
# benchmarks that time models on random tokens.
DEFAULT_VOCAB_SIZES = {'event_type': 4, 'category': 129, 'gap': 16, 'hour': 24,
                       'item_relation': 5}


def random_windows(num_windows: int, length: int, seed: int = 0,
                   vocab_sizes: dict[str, int] | None = None) -> windows_lib.Windows:
  """Full-length windows of uniformly random tokens (timing does not depend on
  the content), [num_windows, length] per field."""
  rng = np.random.default_rng(seed)
  tokens = {field: rng.integers(0, size, (num_windows, length)).astype(np.int32)
            for field, size in (vocab_sizes or DEFAULT_VOCAB_SIZES).items()}
  return windows_lib.Windows(
      tokens=tokens, mask=np.ones((num_windows, length), bool),
      event_kind=np.zeros((num_windows, length), np.int8),
      kind=np.zeros(num_windows, np.int8),
      user_index=np.arange(num_windows, dtype=np.int32))
