"""An LSTM layer written for speed on CPU and accelerators alike.

Three things keep the sequential loop lean:
  * the input-to-gate projection of every time step is one big matmul done
    before the loop, so each step only multiplies the hidden state;
  * all four gate activations come from one tanh over the gate vector;
  * the backward pass is hand-written (`jax.custom_vjp`): the reverse loop only
    carries the hidden-state gradient, and the recurrent kernel's gradient is
    one large matmul after the loop instead of a small one per step.
`lstm_recurrence_reference` is the plain autodiff version the tests compare to.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqad.models import flat


def _gate_constants(hidden_size: int, dtype):
  """Scale and offset that turn tanh into sigmoid on the i, f, o gate slices.

  sigmoid(x) = tanh(x / 2) / 2 + 1 / 2; the candidate slice stays a plain tanh.
  """
  is_candidate = jnp.arange(4 * hidden_size) // hidden_size == 2
  scale = jnp.where(is_candidate, 1.0, 0.5).astype(dtype)
  offset = jnp.where(is_candidate, 0.0, 0.5).astype(dtype)
  return scale, offset


def lstm_cell_update(gates, cell):
  """One LSTM cell update from pre-activation `gates` [batch, 4*hidden].

  Gate order is (input, forget, candidate, output).

  Returns:
    (hidden, cell, activations): activations [batch, 4*hidden] are the gate
    values after their nonlinearity, kept for the backward pass.
  """
  scale, offset = _gate_constants(gates.shape[-1] // 4, gates.dtype)
  activations = jnp.tanh(gates * scale) * scale + offset
  input_gate, forget_gate, candidate, output_gate = jnp.split(activations, 4, axis=-1)
  cell = forget_gate * cell + input_gate * candidate
  hidden = output_gate * jnp.tanh(cell)
  return hidden, cell, activations


def lstm_recurrence_reference(input_gates, kernel, unroll: int = 1):
  """Hidden states [time, batch, hidden] from [time, batch, 4*hidden] input gates."""
  batch, hidden_size = input_gates.shape[1], kernel.shape[0]

  def step(carry, gates_t):
    hidden, cell = carry
    hidden, cell, _ = lstm_cell_update(gates_t + hidden @ kernel, cell)
    return (hidden, cell), hidden

  zeros = jnp.zeros((batch, hidden_size), input_gates.dtype)
  return jax.lax.scan(step, (zeros, zeros), input_gates, unroll=unroll)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def lstm_recurrence(input_gates, kernel, unroll: int = 1):
  """Same as `lstm_recurrence_reference`, with a hand-written backward pass."""
  return _lstm_forward(input_gates, kernel, unroll)[0]


def _lstm_forward(input_gates, kernel, unroll):
  batch, hidden_size = input_gates.shape[1], kernel.shape[0]

  def step(carry, gates_t):
    hidden, cell = carry
    hidden, cell, activations = lstm_cell_update(gates_t + hidden @ kernel, cell)
    return (hidden, cell), (hidden, cell, activations)

  zeros = jnp.zeros((batch, hidden_size), input_gates.dtype)
  _, (hiddens, cells, activations) = jax.lax.scan(
      step, (zeros, zeros), input_gates, unroll=unroll)
  return hiddens, (hiddens, cells, activations, kernel)


def _lstm_backward(unroll, residuals, hidden_grads):
  hiddens, cells, activations, kernel = residuals
  zeros = jnp.zeros_like(hiddens[0])
  previous_cells = jnp.concatenate([zeros[None], cells[:-1]])

  def step(carry, inputs):
    recurrent_grad, cell_grad = carry
    output_grad, cell, previous_cell, gates = inputs
    input_gate, forget_gate, candidate, output_gate = jnp.split(gates, 4, axis=-1)
    hidden_grad = output_grad + recurrent_grad
    tanh_cell = jnp.tanh(cell)
    cell_grad = cell_grad + hidden_grad * output_gate * (1 - tanh_cell**2)
    # Gradients before each gate's nonlinearity (sigmoid' = s(1-s), tanh' = 1-t^2).
    gate_grads = jnp.concatenate([
        cell_grad * candidate * input_gate * (1 - input_gate),
        cell_grad * previous_cell * forget_gate * (1 - forget_gate),
        cell_grad * input_gate * (1 - candidate**2),
        hidden_grad * tanh_cell * output_gate * (1 - output_gate),
    ], axis=-1)
    return (gate_grads @ kernel.T, cell_grad * forget_gate), gate_grads

  _, gate_grads = jax.lax.scan(
      step, (zeros, zeros), (hidden_grads, cells, previous_cells, activations),
      reverse=True, unroll=unroll)

  # The kernel multiplies h[t-1] at step t: one matmul over all steps at once.
  previous_hiddens = jnp.concatenate([zeros[None], hiddens[:-1]])
  kernel_grad = flat.outer_sum(previous_hiddens, gate_grads)
  return gate_grads, kernel_grad.astype(kernel.dtype)


lstm_recurrence.defvjp(_lstm_forward, _lstm_backward)


class LSTM(nn.Module):
  """A unidirectional LSTM over [batch, time, features] -> [batch, time, hidden].

  `step` advances the same layer by one time step, for streaming.

  Attributes:
    hidden: state width.
    unroll: time steps per loop iteration; >1 trades compile time for less
      loop overhead on short, narrow recurrences.
  """

  hidden: int
  unroll: int = 1

  def setup(self):
    # A forget-gate bias of 1 keeps early gradients flowing through time.
    def gate_bias_init(key, shape, dtype=jnp.float32):
      del key
      return jnp.zeros(shape, dtype).at[self.hidden:2 * self.hidden].set(1.0)

    self.input = nn.Dense(4 * self.hidden, bias_init=gate_bias_init)
    self.recurrent = self.param(
        'recurrent', nn.initializers.orthogonal(), (self.hidden, 4 * self.hidden))

  def __call__(self, inputs: jnp.ndarray) -> jnp.ndarray:
    # Time-major before the projection: transposing the narrow inputs (and
    # their gradient) moves 4x less memory than transposing the gates.
    input_gates = flat.dense(self.input, jnp.swapaxes(inputs, 0, 1))
    kernel = self.recurrent.astype(input_gates.dtype)
    return jnp.swapaxes(lstm_recurrence(input_gates, kernel, self.unroll), 0, 1)

  def step(self, state, inputs: jnp.ndarray):
    """One time step: (state, inputs [batch, features]) -> (state, hidden [batch, hidden])."""
    hidden, cell = state
    gates = self.input(inputs)
    gates = gates + hidden.astype(gates.dtype) @ self.recurrent.astype(gates.dtype)
    hidden, cell, _ = lstm_cell_update(gates, cell.astype(gates.dtype))
    return (hidden, cell), hidden
