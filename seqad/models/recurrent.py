"""Stacked LSTM or GRU encoders, one or both directions.

Windows are right-padded, so a forward recurrence never lets padding reach a
real position. The backward direction must not start from the padding either:
it runs over each row's real events in reverse order (padding stays behind
them, at the end), and its outputs are put back in the original order.
"""

import flax.linen as nn
import jax.numpy as jnp

from seqad.models import gru
from seqad.models import lstm

CELLS = {'lstm': lstm.LSTM, 'gru': gru.GRU}


def reverse_real_events(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Reverses each row's real events in time, leaving padding where it is.

  Applying it twice gives `values` back.

  Args:
    values: [batch, time, ...].
    mask: [batch, time] bool, True on a prefix of each row.

  Returns:
    [batch, time, ...]: row b holds values[b, L-1], ..., values[b, 0], then
    its padding unchanged, where L is the row's number of real events.
  """
  time = jnp.arange(mask.shape[1])
  lengths = mask.sum(axis=1, keepdims=True)
  source = jnp.where(time < lengths, lengths - 1 - time, time)
  source = source.reshape(source.shape + (1,) * (values.ndim - 2))
  return jnp.take_along_axis(values, source, axis=1)


class RecurrentEncoder(nn.Module):
  """Stacked recurrent layers: [batch, time, features] -> [batch, time, hidden].

  When bidirectional, every layer has a forward and a backward recurrence of
  width `hidden` each, and their outputs are summed (so the width stays
  `hidden` and the next layer reads both directions).

  Attributes:
    cell: 'lstm' or 'gru'.
    hidden: state width.
    num_layers: stacked layers.
    bidirectional: also read each row's future events.
    unroll: time steps per loop iteration of the recurrence.
  """

  cell: str = 'lstm'
  hidden: int = 128
  num_layers: int = 1
  bidirectional: bool = False
  unroll: int = 1

  @property
  def causal(self) -> bool:
    return not self.bidirectional

  def setup(self):
    if self.cell not in CELLS:
      raise ValueError(f'Unknown recurrent cell {self.cell!r}; expected one of '
                       f'{sorted(CELLS)}.')
    layer_type = CELLS[self.cell]
    # Lists name their layers forward_0, forward_1, ... (and backward_0, ...).
    self.forward = [layer_type(self.hidden, self.unroll) for _ in range(self.num_layers)]
    if self.bidirectional:
      self.backward = [layer_type(self.hidden, self.unroll)
                       for _ in range(self.num_layers)]

  def __call__(self, inputs: jnp.ndarray, mask: jnp.ndarray, *,
               deterministic: bool = True) -> jnp.ndarray:
    """Encodes `inputs` [batch, time, features] with `mask` [batch, time] bool.

    Outputs at padded positions are unspecified. `deterministic` is unused; it
    keeps the call signature the same across encoders.
    """
    del deterministic
    hidden = inputs
    for layer in range(self.num_layers):
      forward = self.forward[layer](hidden)
      if self.bidirectional:
        backward = self.backward[layer](reverse_real_events(hidden, mask))
        forward = forward + reverse_real_events(backward, mask)
      hidden = forward
    return hidden

  def initial_state(self, batch: int) -> tuple:
    """Zero states before the first event, one per layer.

    An LSTM layer's state is (hidden, cell), a GRU layer's is hidden, each
    [batch, hidden] float32.
    """
    zeros = jnp.zeros((batch, self.hidden), jnp.float32)
    return tuple((zeros, zeros) if self.cell == 'lstm' else zeros
                 for _ in range(self.num_layers))

  def step(self, states: tuple, inputs: jnp.ndarray):
    """Advances a causal encoder by one event.

    Args:
      states: per-layer states, from `initial_state` or the previous step.
      inputs: the event [batch, features].

    Returns:
      (states, outputs): the new states and the event's encoding [batch, hidden],
      equal to `__call__`'s output at that position.
    """
    if self.bidirectional:
      raise ValueError('A bidirectional RecurrentEncoder cannot run one event at a time.')
    hidden, new_states = inputs, []
    for layer, state in zip(self.forward, states):
      state, hidden = layer.step(state, hidden)
      new_states.append(state)
    return tuple(new_states), hidden
