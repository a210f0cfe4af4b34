"""Sequence encoders: causality, padding, directions, and fast paths against references.

Each test jits one function that does all its model work, so that the file
compiles once per test instead of once per operation, and most tests draw
random parameters rather than compile the models' own initialisers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqad.models import encoders
from seqad.models import gru
from seqad.models import recurrent
from seqad.models import ssm
from seqad.models import transformer

BATCH, TIME, FEATURES, HIDDEN = 3, 9, 5, 8
LENGTHS = np.array([TIME, 6, 0])  # A full row, a padded row and an empty one.
MASK = np.arange(TIME)[None, :] < LENGTHS[:, None]


def _config(**overrides):
  config = encoders.default_encoder_config()
  config.update(dict(hidden=HIDDEN, num_layers=2, num_heads=2, state_size=4), **overrides)
  return config


def _inputs(seed, shape=(BATCH, TIME, FEATURES)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _random_params(model, *args, seed=0, **kwargs):
  """Normal(0, 0.5) values in the shapes of `model.init(key, *args, **kwargs)`.

  The properties tested here hold for any parameter values, and drawing them
  in NumPy costs no compilation.
  """
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args, **kwargs))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: (0.5 * rng.normal(size=s.shape)).astype(s.dtype), shapes)


@pytest.mark.parametrize('causal', [True, False])
@pytest.mark.parametrize('name', encoders.ENCODERS)
def test_encoder_sees_only_what_its_direction_allows(name, causal):
  model = encoders.make_encoder(name, _config(), causal)
  assert model.causal == causal

  # Three variants of the same rows: as is, garbage in the padding, and new
  # events after t. Rows are independent, so one batch holds all three.
  t = 3
  inputs = _inputs(1)
  garbage = np.where(MASK[..., None], inputs, 1e3 * _inputs(2))
  changed = inputs.copy()
  changed[:, t + 1:] = _inputs(3)[:, t + 1:]
  params = _random_params(model, inputs, MASK)
  outputs = jax.jit(model.apply)(
      params, np.concatenate([inputs, garbage, changed]), np.tile(MASK, (3, 1)))
  outputs, garbage_outputs, changed_outputs = np.split(np.asarray(outputs), 3)
  assert outputs.shape == (BATCH, TIME, HIDDEN)
  assert np.isfinite(garbage_outputs).all()  # Also on the row with no real event.

  np.testing.assert_allclose(garbage_outputs[MASK], outputs[MASK], rtol=1e-5, atol=1e-5)

  # Changing the events after t changes no output up to t if and only if causal.
  past_unchanged = np.allclose(changed_outputs[:2, :t + 1], outputs[:2, :t + 1],
                               rtol=1e-5, atol=1e-5)
  assert past_unchanged == causal
  assert not np.allclose(changed_outputs[:2, t + 1:], outputs[:2, t + 1:])


def test_transformer_causal_switch_with_learned_positions():
  # One layer, so that the last position reads the same inputs in both directions.
  model = encoders.make_encoder(
      'transformer', _config(positions='learned', num_layers=1), causal=True)

  params = _random_params(model, _inputs(1), MASK)
  assert params['params']['position_embedding'].shape == (4096, HIDDEN)

  @jax.jit
  def both_directions(inputs):
    return (model.apply(params, inputs, MASK),
            model.clone(causal=False).apply(params, inputs, MASK))

  causal_outputs, bidirectional_outputs = both_directions(_inputs(1))
  np.testing.assert_allclose(
      bidirectional_outputs[0, -1], causal_outputs[0, -1], rtol=1e-5, atol=1e-5)
  assert not np.allclose(bidirectional_outputs[0, 0], causal_outputs[0, 0], atol=1e-4)


def test_rotary_scores_depend_only_on_relative_position():
  query, key = _inputs(0, (7, 2, 6)), _inputs(1, (7, 2, 6))

  @jax.jit
  def rotate_and_score(offset):
    positions = jnp.arange(7) + offset
    rotated_query = transformer.apply_rotary(query, positions)
    rotated_key = transformer.apply_rotary(key, positions)
    return rotated_query, jnp.einsum('qhd,khd->hqk', rotated_query, rotated_key)

  rotated, scores = rotate_and_score(0)
  np.testing.assert_allclose(rotate_and_score(1000)[1], scores, rtol=1e-4, atol=1e-4)
  # The rotation keeps norms and moves every vector but the one at position 0.
  np.testing.assert_allclose(
      np.linalg.norm(rotated, axis=-1), np.linalg.norm(query, axis=-1), rtol=1e-5)
  np.testing.assert_allclose(rotated[0], query[0])
  assert not np.isclose(rotated[1:], query[1:]).all(axis=-1).any()


def test_reverse_real_events_keeps_padding_in_place():
  values = np.arange(BATCH * TIME).reshape(BATCH, TIME)
  reversed_values = np.asarray(recurrent.reverse_real_events(values, MASK))
  np.testing.assert_array_equal(reversed_values[0], values[0, ::-1])
  np.testing.assert_array_equal(
      reversed_values[1], np.r_[values[1, 5::-1], values[1, 6:]])
  np.testing.assert_array_equal(reversed_values[2], values[2])
  np.testing.assert_array_equal(
      recurrent.reverse_real_events(reversed_values, MASK), values)


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def test_gru_layer_equals_a_step_by_step_numpy_loop():
  rng = np.random.default_rng(0)
  kernel, bias = rng.normal(size=(4, 15)), rng.normal(size=15)
  recurrent_kernel, recurrent_bias = rng.normal(size=(5, 15)), rng.normal(size=5)
  params = {'params': {'input': {'kernel': kernel, 'bias': bias},
                       'recurrent': recurrent_kernel, 'recurrent_bias': recurrent_bias}}
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
  inputs = _inputs(0, (3, 7, 4))
  outputs = np.asarray(jax.jit(gru.GRU(hidden=5, unroll=2).apply)(params, inputs))

  hidden = np.zeros((3, 5))
  for t in range(7):
    input_r, input_z, input_n = np.split(inputs[:, t] @ kernel + bias, 3, axis=-1)
    hidden_r, hidden_z, hidden_n = np.split(hidden @ recurrent_kernel, 3, axis=-1)
    reset = _sigmoid(input_r + hidden_r)
    update = _sigmoid(input_z + hidden_z)
    candidate = np.tanh(input_n + reset * (hidden_n + recurrent_bias))
    hidden = (1 - update) * candidate + update * hidden
    np.testing.assert_allclose(outputs[:, t], hidden, rtol=1e-5, atol=1e-5)


def test_gru_hand_written_backward_matches_autodiff():
  time_steps, batch, hidden, unroll = 9, 3, 5, 1
  input_gates = jax.random.normal(jax.random.key(0), (time_steps, batch, 3 * hidden))
  kernel = 0.5 * jax.random.normal(jax.random.key(1), (hidden, 3 * hidden))
  bias = jax.random.normal(jax.random.key(2), (hidden,))
  weights = jax.random.normal(jax.random.key(3), (time_steps, batch, hidden))

  @jax.jit
  def values_and_grads(*args):
    results = []
    for recurrence in (gru.gru_recurrence, gru.gru_recurrence_reference):
      loss = lambda *args: jnp.sum(weights * recurrence(*args, unroll) ** 2)
      grads = jax.grad(loss, argnums=(0, 1, 2))(*args)
      results.append((recurrence(*args, unroll), grads))
    return results

  (fast, fast_grads), (reference, reference_grads) = values_and_grads(
      input_gates, kernel, bias)
  np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-6)
  for got, want in zip(fast_grads, reference_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_associative_scan_equals_the_sequential_recurrence_over_long_sequences():
  time_steps, states = 1024, 6
  rng = np.random.default_rng(0)
  # Slow decays near the unit circle are where a parallel scan would drift.
  magnitudes = rng.uniform(0.99, 0.9999, states)
  decays = np.broadcast_to(
      magnitudes * np.exp(1j * rng.uniform(0, np.pi, states)), (time_steps, states))
  drives = rng.normal(size=(time_steps, states, 2)) @ np.array([1, 1j])

  both = jax.jit(lambda *args: (ssm.linear_recurrence(*args),
                                ssm.linear_recurrence_reference(*args)))
  parallel, sequential = both(decays.astype(np.complex64), drives.astype(np.complex64))
  np.testing.assert_allclose(parallel, sequential, atol=1e-5 * np.abs(sequential).max())


@pytest.mark.parametrize('selective', [False, True])
def test_ssm_streaming_steps_equal_the_parallel_encoder(selective):
  # Long sequences are the recurrence test's job: the scan's compile time grows
  # with the number of steps.
  time_steps = 128
  model = ssm.SSMEncoder(hidden=HIDDEN, state_size=4, num_layers=2, selective=selective)
  inputs = _inputs(0, (2, time_steps, FEATURES))
  mask = np.ones((2, time_steps), bool)
  # Decay rates from 1e-3 (|a| = 0.999) to 1, so that some states remember
  # the whole sequence.
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: np.log(np.geomspace(1e-3, 1, 4)).astype(x.dtype)
      if path[-1].key == 'nu' else x, _random_params(model, inputs, mask))

  def decay_magnitudes(module, inputs):
    return jnp.abs(module.blocks[0].forward.coefficients(inputs)[0])

  @jax.jit
  def parallel_and_streamed(inputs, probe):
    def step(states, inputs_t):
      return model.apply(params, states, inputs_t, method=ssm.SSMEncoder.step)

    _, streamed = jax.lax.scan(step, model.initial_state(2), jnp.swapaxes(inputs, 0, 1))
    magnitudes = model.apply(params, probe, method=decay_magnitudes)
    return model.apply(params, inputs, mask), jnp.swapaxes(streamed, 0, 1), magnitudes

  parallel, streamed, magnitudes = parallel_and_streamed(
      inputs, 10 * _inputs(1, (2, 16, HIDDEN)))
  np.testing.assert_allclose(streamed, parallel, rtol=1e-4, atol=1e-4)
  # Every decay, input-dependent or not, lies strictly inside the unit circle.
  assert 0 < magnitudes.min() and magnitudes.max() < 1


def test_ssm_decays_start_on_a_ring():
  layer = ssm.DiagonalRecurrence(width=4, state_size=256, r_min=0.6, r_max=0.95)
  init = jax.jit(lambda inputs: layer.init_with_output(
      jax.random.key(0), inputs, method=ssm.DiagonalRecurrence.coefficients))
  (decays, _), params = init(_inputs(0, (1, 4)))
  magnitudes = np.abs(decays[0])
  assert 0.6 <= magnitudes.min() < 0.62 and 0.93 < magnitudes.max() <= 0.95
  assert 0 <= np.angle(decays).min() and np.angle(decays).max() <= np.pi / 4
  # The input normalisation starts at sqrt(1 - |a|^2).
  np.testing.assert_allclose(
      np.exp(params['params']['norm_log']), np.sqrt(1 - magnitudes**2), rtol=1e-4)


def test_bidirectional_ssm_cannot_stream():
  model = ssm.SSMEncoder(hidden=HIDDEN, state_size=4, num_layers=1, causal=False)
  with pytest.raises(ValueError, match='one event at a time'):
    model.init(jax.random.key(0), model.initial_state(BATCH), _inputs(0)[:, 0],
               method=ssm.SSMEncoder.step)


def test_make_encoder_rejects_bad_requests():
  with pytest.raises(ValueError, match='Unknown encoder'):
    encoders.make_encoder('rnn', _config(), causal=True)
  with pytest.raises(ValueError, match='positions'):
    encoders.make_encoder('transformer', _config(positions='sinusoidal'), causal=True)
  with pytest.raises(ValueError, match='num_heads'):
    encoders.make_encoder('transformer', _config(num_heads=3), causal=True)
  model = encoders.make_encoder(
      'transformer', _config(positions='learned', max_length=4), causal=True)
  with pytest.raises(ValueError, match='max_length'):
    jax.eval_shape(model.init, jax.random.key(0), _inputs(0), MASK)
