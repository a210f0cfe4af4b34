"""Sequence encoders by name, built from one config section.

Every encoder maps (inputs [batch, time, features], mask [batch, time] bool)
to [batch, time, hidden], takes a keyword-only `deterministic` flag (dropout),
and leaves its outputs at padded positions unspecified. A causal encoder's
output at t depends on inputs 0..t only; a bidirectional one reads every real
event of the row, never the padding.
"""

import flax.linen as nn
import ml_collections

from seqad.models import recurrent
from seqad.models import ssm
from seqad.models import transformer

ENCODERS = ('lstm', 'gru', 'transformer', 'ssm')

# Which directions each encoder can run in: name -> (causal, bidirectional).
_DIRECTIONS = {name: (True, True) for name in ENCODERS}


def default_encoder_config() -> ml_collections.ConfigDict:
  """Every encoder field with its default; each encoder reads the ones it uses."""
  config = ml_collections.ConfigDict()
  config.hidden = 128  # Output width (and state / model width) of every encoder.
  config.num_layers = 2  # Stacked layers or blocks.
  config.unroll = 1  # lstm, gru: time steps per loop iteration of the recurrence.
  config.num_heads = 4  # transformer: attention heads; must divide hidden.
  config.mlp_ratio = 4  # transformer: MLP width as a multiple of hidden.
  config.positions = 'rotary'  # transformer: 'rotary' or 'learned' positions.
  config.max_length = 4096  # transformer: longest window learned positions cover.
  config.dropout = 0.0  # transformer, ssm: dropout rate on each residual update.
  config.state_size = 64  # ssm: complex states per layer.
  config.selective = False  # ssm: input-dependent decays (Mamba-style).
  return config


def make_encoder(name: str, config: ml_collections.ConfigDict, causal: bool) -> nn.Module:
  """Builds encoder `name` from `config` (fields of `default_encoder_config`).

  Args:
    name: one of `ENCODERS`.
    config: the encoder config section.
    causal: True for an encoder whose output at t sees inputs 0..t only, False
      for one that reads the whole row in both directions.

  Raises:
    ValueError: for an unknown name, a direction the encoder cannot run in, or
      an invalid field value.
  """
  if name not in ENCODERS:
    raise ValueError(f'Unknown encoder {name!r}; expected one of {ENCODERS}.')
  if not _DIRECTIONS[name][0 if causal else 1]:
    direction = 'causal' if causal else 'bidirectional'
    raise ValueError(f'Encoder {name!r} cannot run {direction}.')

  if name in ('lstm', 'gru'):
    return recurrent.RecurrentEncoder(
        cell=name, hidden=config.hidden, num_layers=config.num_layers,
        bidirectional=not causal, unroll=config.unroll)

  if name == 'transformer':
    if config.positions not in transformer.POSITIONS:
      raise ValueError(f'Unknown positions {config.positions!r}; expected one of '
                       f'{transformer.POSITIONS}.')
    if config.hidden % config.num_heads:
      raise ValueError(f'hidden={config.hidden} is not a multiple of '
                       f'num_heads={config.num_heads}.')
    return transformer.TransformerEncoder(
        hidden=config.hidden, num_layers=config.num_layers, num_heads=config.num_heads,
        mlp_ratio=config.mlp_ratio, causal=causal, positions=config.positions,
        max_length=config.max_length, dropout=config.dropout)

  return ssm.SSMEncoder(
      hidden=config.hidden, state_size=config.state_size, num_layers=config.num_layers,
      causal=causal, selective=config.selective, dropout=config.dropout)
