"""Shared fixtures: small hand-made windows that need no data files."""

import os

# Tests check values, not speed: the cheapest XLA CPU optimisation level halves
# compile times, which dominate this suite. Set before anything imports jax.
if 'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_backend_optimization_level=0').strip()
# Four fake CPU devices for the data-parallel tests; everything else uses one.
if 'xla_force_host_platform_device_count' not in os.environ['XLA_FLAGS']:
  os.environ['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=4'

import numpy as np
import pytest

from seqad.data import windows as windows_lib

def tiny_neural_config(num_steps: int):
  """The default `neural` config section, shrunk so a test trains in seconds."""
  from configs import default  # Imports jax: only after XLA_FLAGS is set above.
  config = default.get_config().neural
  config.embed_dim = 16
  config.encoder.hidden = 32
  config.encoder.num_layers = 1
  config.encoder.num_heads = 2
  config.encoder.state_size = 16
  config.learning_rate = 1e-2
  config.warmup_steps = 10
  config.num_steps = num_steps
  config.batch_size = 16
  config.score_batch_size = 24
  config.log_every = 50
  config.score_passes = 3
  config.bottleneck = 16
  return config


def multihost_config():
  """The tiny config of the multi-process test (tests/multihost_worker.py)."""
  config = tiny_neural_config(num_steps=8)
  config.batch_size = 10  # Not a multiple of the 4 devices: padded rows.
  config.score_batch_size = 10
  config.log_every = 2
  config.eval_every = 4
  config.patience = 0
  config.checkpoint_every = 0
  return config


VOCAB_SIZES = {'event_type': 4, 'category': 6, 'gap': 8, 'hour': 24, 'item_relation': 5}


def make_windows(tokens: dict, mask: np.ndarray, kind=None) -> windows_lib.Windows:
  num_windows = mask.shape[0]
  return windows_lib.Windows(
      tokens={f: np.asarray(v, np.int32) for f, v in tokens.items()},
      mask=np.asarray(mask, bool),
      event_kind=np.zeros(mask.shape, np.int8),
      kind=np.zeros(num_windows, np.int8) if kind is None else np.asarray(kind, np.int8),
      user_index=np.arange(num_windows, dtype=np.int32))


@pytest.fixture
def pattern_windows() -> windows_lib.Windows:
  """64 windows of a deterministic cycle: view, view, cart, buy over categories."""
  num_windows, length = 64, 12
  position = np.arange(length)[None, :] + np.arange(num_windows)[:, None]
  tokens = {
      'event_type': np.array([0, 0, 1, 3])[position % 4],
      'category': 1 + (position // 4) % 5,
      'gap': np.array([3, 2, 2, 5])[position % 4],
      'hour': (position // 3) % 24,
      'item_relation': np.array([0, 1, 1, 1])[position % 4],
  }
  lengths = np.where(np.arange(num_windows) % 4 == 0, length - 3, length)
  mask = np.arange(length)[None, :] < lengths[:, None]
  tokens = {f: np.where(mask, v, 0) for f, v in tokens.items()}
  return make_windows(tokens, mask)
