"""Cutting `Windows` into fixed-shape batches for jitted functions."""

from typing import Iterator

import numpy as np

from seqad.data import windows as windows_lib


def gather(windows: windows_lib.Windows, index: np.ndarray,
           with_labels: bool = False) -> dict:
  """The model inputs of windows[index]: {'tokens': {field: [b, t]}, 'mask': [b, t]}.

  Labels ('label' [b] float32, 1 for anomalous windows) are added only when
  asked for: only supervised training may read them.
  """
  batch = {
      'tokens': {field: values[index] for field, values in windows.tokens.items()},
      'mask': windows.mask[index],
  }
  if with_labels:
    batch['label'] = (windows.kind[index] > 0).astype(np.float32)
  return batch


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


def shuffled_indices(num_windows: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
  """An endless stream of training batches' window indices.

  Consecutive epochs are independent permutations joined end to end, so every
  window is seen once per epoch and a batch may straddle two epochs; this also
  serves training sets smaller than one batch.
  """
  if num_windows == 0:
    raise ValueError('Cannot draw training batches from zero windows.')
  rng = np.random.default_rng(seed)
  pending = np.zeros(0, np.int64)
  while True:
    while len(pending) < batch_size:
      pending = np.concatenate([pending, rng.permutation(num_windows)])
    yield pending[:batch_size]
    pending = pending[batch_size:]
