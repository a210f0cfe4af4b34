"""A diagonal linear state-space encoder in the LRU / S5 family.

Each layer keeps a complex state h of `state_size` and runs

  h_t = a_t * h_{t-1} + n_t * (B x_t)        (elementwise in the state)
  y_t = Re(C h_t) + D * x_t

with decays a = exp(-(exp(nu) + eps) + i*theta), so |a| <= exp(-eps) < 1 for
every parameter value and the recurrence is stable by construction (eps keeps
it so in float32, where exp(-x) rounds to 1 for x below 6e-8). The eigenvalues
start spread over a ring r_min <= |a| <= r_max (Orvieto et al. 2023,
"Resurrecting recurrent neural networks for long sequences"), and n normalises
the input so that each state's variance does not grow as |a| approaches 1
(n = sqrt(1 - |a|^2) at initialisation, learned afterwards).

Because the recurrence is linear, all time steps are computed at once with
`jax.lax.associative_scan` (log(time) parallel levels) in training and batch
scoring; `DiagonalRecurrence.step` / `SSMEncoder.step` advance the same model
one event at a time for a streaming scorer.

With `selective=True` the decay depends on the input (as in Mamba): a_t =
exp(-(dt_t * exp(nu) + eps) + i * dt_t * theta) with a positive step
dt_t = softplus(W x_t + c), and n_t = sqrt(1 - |a_t|^2). It stays a linear
recurrence in h, so the same associative scan applies.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqad.models import flat

from seqad.models import recurrent

# The smallest decay rate -log|a|: at most exp(-1e-6) is below 1 in float32.
MIN_RATE = 1e-6


def _combine(earlier, later):
  """Composes two affine maps h -> a*h + b, `earlier` applied first."""
  earlier_decay, earlier_drive = earlier
  later_decay, later_drive = later
  return later_decay * earlier_decay, later_decay * earlier_drive + later_drive


def linear_recurrence(decays: jnp.ndarray, drives: jnp.ndarray) -> jnp.ndarray:
  """States h_t = decays_t * h_{t-1} + drives_t from h_{-1} = 0, in parallel.

  Args:
    decays: [time, state] complex.
    drives: [time, state] complex.

  Returns:
    [time, state] complex states.
  """
  return jax.lax.associative_scan(_combine, (decays, drives))[1]


def linear_recurrence_reference(decays: jnp.ndarray, drives: jnp.ndarray) -> jnp.ndarray:
  """`linear_recurrence` one step after another, for tests to compare against."""

  def step(state, inputs):
    decay, drive = inputs
    state = decay * state + drive
    return state, state

  return jax.lax.scan(step, jnp.zeros_like(drives[0]), (decays, drives))[1]


def _ring_init(r_min: float, r_max: float, max_phase: float):
  """Initialisers for nu and theta that put the decays uniformly on a ring."""
  if not 0 < r_min <= r_max < math.exp(-MIN_RATE):
    raise ValueError(
        f'Need 0 < r_min <= r_max < exp(-MIN_RATE), got r_min={r_min}, r_max={r_max}.')

  def nu_init(key, shape, dtype=jnp.float32):
    # Uniform in area: |a|^2 uniform on [r_min^2, r_max^2].
    squared = jax.random.uniform(key, shape, dtype, r_min**2, r_max**2)
    return jnp.log(-0.5 * jnp.log(squared) - MIN_RATE)

  def theta_init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, 0.0, max_phase)

  return nu_init, theta_init


def _one_minus_squared(rate):
  """1 - |a|^2 for |a| = exp(-rate); expm1 stays accurate as |a| -> 1."""
  return -jnp.expm1(-2 * rate)


class DiagonalRecurrence(nn.Module):
  """One diagonal linear recurrence over [batch, time, width] -> same shape.

  Attributes:
    width: input and output width.
    state_size: complex states.
    selective: input-dependent decay.
    skip: add the D * x skip term (a second direction does without it).
    r_min, r_max: ring of the initial decay magnitudes.
    max_phase: initial decay phases are uniform on [0, max_phase].
  """

  width: int
  state_size: int
  selective: bool = False
  skip: bool = True
  r_min: float = 0.5
  r_max: float = 0.99
  max_phase: float = math.pi / 4

  def setup(self):
    nu_init, theta_init = _ring_init(self.r_min, self.r_max, self.max_phase)
    # nu: log of the decay rate -log|a| (less MIN_RATE); theta: phase turned per step.
    self.nu = self.param('nu', nu_init, (self.state_size,))
    self.theta = self.param('theta', theta_init, (self.state_size,))
    if not self.selective:
      # Starts at sqrt(1 - |a|^2) of the initial decays, then learns freely.
      self.norm_log = self.param(
          'norm_log', lambda key, shape: 0.5 * jnp.log(_one_minus_squared(self._rate())),
          (self.state_size,))
    else:
      # A zero kernel and softplus(c) = 1 start the model at the plain LRU.
      self.step_size = nn.Dense(
          self.state_size, kernel_init=nn.initializers.zeros,
          bias_init=nn.initializers.constant(math.log(math.e - 1)), name='step_size')

    # B and C as real and imaginary halves stacked along one axis: one matmul each.
    self.input_kernel = self.param(
        'input_kernel', nn.initializers.normal(1 / math.sqrt(2 * self.width)),
        (self.width, 2 * self.state_size))
    self.output_kernel = self.param(
        'output_kernel', nn.initializers.normal(1 / math.sqrt(self.state_size)),
        (2 * self.state_size, self.width))
    if self.skip:
      self.skip_scale = self.param(
          'skip_scale', nn.initializers.normal(1.0), (self.width,))

  def _rate(self, step_size=1.0):
    """The decay rate -log|a| > 0 after a step of `step_size`."""
    return step_size * jnp.exp(self.nu) + MIN_RATE

  def coefficients(self, inputs: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Decays a_t and drives n_t * B x_t, each [..., state] complex, of [..., width]."""
    projected = flat.matmul(inputs, self.input_kernel)
    drive = jax.lax.complex(*jnp.split(projected, 2, axis=-1))

    if self.selective:
      step_size = nn.softplus(flat.dense(self.step_size, inputs))
      rate = self._rate(step_size)
      decay = jnp.exp(jax.lax.complex(-rate, step_size * self.theta))
      norm = jnp.sqrt(_one_minus_squared(rate))
    else:
      decay = jnp.exp(jax.lax.complex(-self._rate(), self.theta))
      decay = jnp.broadcast_to(decay, drive.shape)
      norm = jnp.exp(self.norm_log)
    return decay, drive * norm.astype(drive.dtype)

  def readout(self, states: jnp.ndarray, inputs: jnp.ndarray | None) -> jnp.ndarray:
    """Re(C h) [+ D x] of states [..., state] and inputs [..., width]."""
    # Re(C h) = C_re h_re - C_im h_im; the kernel stores (C_re, -C_im) stacked.
    outputs = flat.matmul(jnp.concatenate([states.real, states.imag], axis=-1),
                          self.output_kernel)
    if self.skip:
      outputs = outputs + self.skip_scale * inputs
    return outputs

  def __call__(self, inputs: jnp.ndarray) -> jnp.ndarray:
    """All steps at once: [batch, time, width] -> [batch, time, width]."""
    inputs = inputs.astype(jnp.float32)
    decays, drives = self.coefficients(inputs)
    states = jax.vmap(linear_recurrence)(decays, drives)
    return self.readout(states, inputs)

  def step(self, state: jnp.ndarray, inputs: jnp.ndarray):
    """One event: (state [batch, state] complex, inputs [batch, width]) -> (state, y)."""
    inputs = inputs.astype(jnp.float32)
    decay, drive = self.coefficients(inputs)
    state = decay * state + drive
    return state, self.readout(state, inputs)


class SSMBlock(nn.Module):
  """Pre-norm residual block: LayerNorm -> recurrence -> GELU -> GLU -> residual.

  When not causal, a second recurrence reads each row's real events in reverse
  and the two directions' outputs are summed.
  """

  hidden: int
  state_size: int
  causal: bool = True
  selective: bool = False
  dropout: float = 0.0

  def setup(self):
    self.norm = nn.LayerNorm()
    self.forward = DiagonalRecurrence(self.hidden, self.state_size, self.selective)
    if not self.causal:
      self.backward = DiagonalRecurrence(
          self.hidden, self.state_size, self.selective, skip=False)
    self.gate = nn.Dense(2 * self.hidden)
    self.drop = nn.Dropout(self.dropout)

  def _update(self, mixed: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
    values, gates = jnp.split(flat.dense(self.gate, nn.gelu(mixed)), 2, axis=-1)
    return self.drop(values * nn.sigmoid(gates), deterministic)

  def __call__(self, inputs: jnp.ndarray, mask: jnp.ndarray,
               deterministic: bool = True) -> jnp.ndarray:
    normed = self.norm(inputs)
    mixed = self.forward(normed)
    if not self.causal:
      mixed = mixed + recurrent.reverse_real_events(
          self.backward(recurrent.reverse_real_events(normed, mask)), mask)
    return inputs + self._update(mixed, deterministic).astype(inputs.dtype)

  def step(self, state: jnp.ndarray, inputs: jnp.ndarray):
    """One event [batch, hidden] of a causal block; returns (state, output)."""
    state, mixed = self.forward.step(state, self.norm(inputs))
    return state, inputs + self._update(mixed, True).astype(inputs.dtype)


class SSMEncoder(nn.Module):
  """Stacked SSM blocks: [batch, time, features] -> [batch, time, hidden].

  Attributes:
    hidden: residual stream width.
    state_size: complex states per layer.
    num_layers: blocks.
    causal: forward direction only; otherwise each block also reads each row's
      real events in reverse.
    selective: input-dependent decays.
    dropout: dropout rate on each block's update, when not deterministic.
  """

  hidden: int = 128
  state_size: int = 64
  num_layers: int = 2
  causal: bool = True
  selective: bool = False
  dropout: float = 0.0

  def setup(self):
    # Only called (and so only given parameters) when features != hidden.
    self.input = nn.Dense(self.hidden)
    self.blocks = [
        SSMBlock(self.hidden, self.state_size, self.causal, self.selective, self.dropout)
        for _ in range(self.num_layers)
    ]
    self.final_norm = nn.LayerNorm()

  def _project(self, inputs: jnp.ndarray) -> jnp.ndarray:
    return inputs if inputs.shape[-1] == self.hidden else flat.dense(self.input, inputs)

  def __call__(self, inputs: jnp.ndarray, mask: jnp.ndarray, *,
               deterministic: bool = True) -> jnp.ndarray:
    """Encodes `inputs` [batch, time, features] with `mask` [batch, time] bool.

    Outputs at padded positions are unspecified.
    """
    hidden = self._project(inputs)
    for block in self.blocks:
      hidden = block(hidden, mask, deterministic)
    return self.final_norm(hidden)

  def initial_state(self, batch: int) -> tuple[jnp.ndarray, ...]:
    """Zero states, one [batch, state_size] complex array per layer."""
    return tuple(jnp.zeros((batch, self.state_size), jnp.complex64)
                 for _ in range(self.num_layers))

  def step(self, states: tuple[jnp.ndarray, ...], inputs: jnp.ndarray):
    """Advances a causal encoder by one event.

    Args:
      states: per-layer states, from `initial_state` or the previous step.
      inputs: the event [batch, features].

    Returns:
      (states, outputs): the new states and the event's encoding [batch, hidden],
      equal to `__call__`'s output at that position.
    """
    if not self.causal:
      raise ValueError('A bidirectional SSMEncoder cannot run one event at a time.')
    hidden = self._project(inputs)
    new_states = []
    for block, state in zip(self.blocks, states):
      state, hidden = block.step(state, hidden)
      new_states.append(state)
    return tuple(new_states), self.final_norm(hidden)
