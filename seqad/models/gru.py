"""A GRU layer written for speed, in the same way as `seqad.models.lstm`.

The cell is the variant where the reset gate scales the recurrent candidate
term after its matmul (as in cuDNN):

  r = sigmoid(x_r + h U_r)
  z = sigmoid(x_z + h U_z)
  n = tanh(x_n + r * (h U_n + b_n))
  h' = (1 - z) * n + z * h

so that one [hidden, 3*hidden] matmul per step serves all three gates. The
input projections x_r, x_z, x_n of every time step are one matmul done before
the loop, and the backward pass is hand-written (`jax.custom_vjp`): the reverse
loop carries only the hidden-state gradient and the recurrent kernel's gradient
is one large matmul after the loop. `gru_recurrence_reference` is the plain
autodiff version the tests compare to.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqad.models import flat


def gru_cell_update(input_gates, recurrent_gates, hidden):
  """One GRU update from pre-activations, each [batch, 3*hidden].

  Args:
    input_gates: x W + b for the (reset, update, candidate) gates.
    recurrent_gates: h U + (0, 0, b_n), the same gate order.
    hidden: the previous state [batch, hidden].

  Returns:
    (hidden, activations): activations [batch, 3*hidden] are (r, z, n) after
    their nonlinearity, kept for the backward pass.
  """
  input_rz, input_n = jnp.split(input_gates, [2 * hidden.shape[-1]], axis=-1)
  recurrent_rz, recurrent_n = jnp.split(recurrent_gates, [2 * hidden.shape[-1]], axis=-1)
  reset, update = jnp.split(jax.nn.sigmoid(input_rz + recurrent_rz), 2, axis=-1)
  candidate = jnp.tanh(input_n + reset * recurrent_n)
  hidden = candidate + update * (hidden - candidate)
  return hidden, jnp.concatenate([reset, update, candidate], axis=-1)


def _recurrent_bias(bias, hidden_size: int):
  """The candidate-only recurrent bias [hidden] placed in a [3*hidden] vector."""
  return jnp.concatenate([jnp.zeros((2 * hidden_size,), bias.dtype), bias])


def gru_recurrence_reference(input_gates, kernel, bias, unroll: int = 1):
  """Hidden states [time, batch, hidden] from [time, batch, 3*hidden] input gates.

  Args:
    input_gates: input projections of every step, [time, batch, 3*hidden].
    kernel: recurrent kernel [hidden, 3*hidden].
    bias: recurrent bias of the candidate gate, [hidden].
    unroll: time steps per loop iteration.
  """
  batch, hidden_size = input_gates.shape[1], kernel.shape[0]
  full_bias = _recurrent_bias(bias, hidden_size)

  def step(hidden, gates_t):
    hidden, _ = gru_cell_update(gates_t, hidden @ kernel + full_bias, hidden)
    return hidden, hidden

  zeros = jnp.zeros((batch, hidden_size), input_gates.dtype)
  return jax.lax.scan(step, zeros, input_gates, unroll=unroll)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def gru_recurrence(input_gates, kernel, bias, unroll: int = 1):
  """Same as `gru_recurrence_reference`, with a hand-written backward pass."""
  return _gru_forward(input_gates, kernel, bias, unroll)[0]


def _gru_forward(input_gates, kernel, bias, unroll):
  batch, hidden_size = input_gates.shape[1], kernel.shape[0]
  full_bias = _recurrent_bias(bias, hidden_size)

  def step(hidden, gates_t):
    recurrent_gates = hidden @ kernel + full_bias
    hidden, activations = gru_cell_update(gates_t, recurrent_gates, hidden)
    # The candidate's recurrent term is the one pre-activation the backward needs.
    return hidden, (hidden, activations, recurrent_gates[:, 2 * hidden_size:])

  zeros = jnp.zeros((batch, hidden_size), input_gates.dtype)
  _, (hiddens, activations, recurrent_candidates) = jax.lax.scan(
      step, zeros, input_gates, unroll=unroll)
  return hiddens, (hiddens, activations, recurrent_candidates, kernel, bias)


def _gru_backward(unroll, residuals, hidden_grads):
  hiddens, activations, recurrent_candidates, kernel, bias = residuals
  zeros = jnp.zeros_like(hiddens[0])
  previous_hiddens = jnp.concatenate([zeros[None], hiddens[:-1]])

  def step(recurrent_grad, inputs):
    output_grad, previous_hidden, gates, recurrent_candidate = inputs
    reset, update, candidate = jnp.split(gates, 3, axis=-1)
    hidden_grad = output_grad + recurrent_grad

    # Gradients before each gate's nonlinearity (sigmoid' = s(1-s), tanh' = 1-t^2).
    candidate_grad = hidden_grad * (1 - update) * (1 - candidate**2)
    reset_grad = candidate_grad * recurrent_candidate * reset * (1 - reset)
    update_grad = hidden_grad * (previous_hidden - candidate) * update * (1 - update)
    input_gate_grads = jnp.concatenate([reset_grad, update_grad, candidate_grad], axis=-1)

    # The reset gate scales the candidate's recurrent term after the matmul.
    recurrent_gate_grads = jnp.concatenate(
        [reset_grad, update_grad, candidate_grad * reset], axis=-1)
    previous_grad = hidden_grad * update + recurrent_gate_grads @ kernel.T
    return previous_grad, (input_gate_grads, recurrent_gate_grads)

  _, (input_gate_grads, recurrent_gate_grads) = jax.lax.scan(
      step, zeros, (hidden_grads, previous_hiddens, activations, recurrent_candidates),
      reverse=True, unroll=unroll)

  # The kernel multiplies h[t-1] at step t: one matmul over all steps at once.
  kernel_grad = flat.outer_sum(previous_hiddens, recurrent_gate_grads)
  bias_grad = recurrent_gate_grads[..., 2 * kernel.shape[0]:].sum((0, 1))
  return input_gate_grads, kernel_grad.astype(kernel.dtype), bias_grad.astype(bias.dtype)


gru_recurrence.defvjp(_gru_forward, _gru_backward)


class GRU(nn.Module):
  """A unidirectional GRU over [batch, time, features] -> [batch, time, hidden].

  `step` advances the same layer by one time step, for streaming.

  Attributes:
    hidden: state width.
    unroll: time steps per loop iteration; >1 trades compile time for less
      loop overhead on short, narrow recurrences.
  """

  hidden: int
  unroll: int = 1

  def setup(self):
    self.input = nn.Dense(3 * self.hidden)
    self.recurrent = self.param(
        'recurrent', nn.initializers.orthogonal(), (self.hidden, 3 * self.hidden))
    self.recurrent_bias = self.param('recurrent_bias', nn.initializers.zeros, (self.hidden,))

  def __call__(self, inputs: jnp.ndarray) -> jnp.ndarray:
    # Time-major before the projection: transposing the narrow inputs (and
    # their gradient) moves 3x less memory than transposing the gates.
    input_gates = flat.dense(self.input, jnp.swapaxes(inputs, 0, 1))
    hiddens = gru_recurrence(
        input_gates, self.recurrent.astype(input_gates.dtype),
        self.recurrent_bias.astype(input_gates.dtype), self.unroll)
    return jnp.swapaxes(hiddens, 0, 1)

  def step(self, hidden: jnp.ndarray, inputs: jnp.ndarray):
    """One time step: (hidden [batch, hidden], inputs [batch, features]) -> (hidden, hidden)."""
    input_gates = self.input(inputs)
    dtype = input_gates.dtype
    recurrent_gates = (hidden.astype(dtype) @ self.recurrent.astype(dtype) +
                       _recurrent_bias(self.recurrent_bias.astype(dtype), self.hidden))
    hidden, _ = gru_cell_update(input_gates, recurrent_gates, hidden.astype(dtype))
    return hidden, hidden
