"""The LSTM layer, the next-event model's causality and padding, and training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import VOCAB_SIZES, make_windows, tiny_neural_config
from seqad import batching
from seqad.detectors import neural
from seqad.models import encoders
from seqad.models import heads
from seqad.models import lstm
from seqad.models import objectives


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def test_lstm_layer_equals_a_step_by_step_numpy_loop():
  layer = lstm.LSTM(hidden=5, unroll=2)
  inputs = jax.random.normal(jax.random.key(0), (3, 7, 4))
  params = layer.init(jax.random.key(1), inputs)
  outputs = np.asarray(layer.apply(params, inputs))

  kernel = np.asarray(params['params']['input']['kernel'])
  bias = np.asarray(params['params']['input']['bias'])
  recurrent = np.asarray(params['params']['recurrent'])
  hidden = np.zeros((3, 5))
  cell = np.zeros((3, 5))
  for t in range(7):
    gates = np.asarray(inputs[:, t]) @ kernel + bias + hidden @ recurrent
    i, f, g, o = np.split(gates, 4, axis=-1)
    cell = _sigmoid(f) * cell + _sigmoid(i) * np.tanh(g)
    hidden = _sigmoid(o) * np.tanh(cell)
    np.testing.assert_allclose(outputs[:, t], hidden, rtol=1e-5, atol=1e-5)


def _random_tokens(seed, batch=2, length=10):
  rng = np.random.default_rng(seed)
  return {f: jnp.asarray(rng.integers(0, size, (batch, length)), jnp.int32)
          for f, size in VOCAB_SIZES.items()}


def test_next_event_model_does_not_look_ahead():
  tokens = _random_tokens(0)
  mask = jnp.ones((2, 10), bool)
  encoder = encoders.make_encoder('lstm', tiny_neural_config(1).encoder, causal=True)
  model = objectives.NextEventModel(VOCAB_SIZES, 16, encoder)
  params = model.init(jax.random.key(0), tokens, mask)
  logits = model.apply(params, tokens, mask)
  nll = heads.event_nll(logits, tokens, VOCAB_SIZES['category'])

  t = 4  # Change every field of event t + 1.
  changed = {f: v.at[:, t + 1].set((v[:, t + 1] + 1) % VOCAB_SIZES[f])
             for f, v in tokens.items()}
  changed_logits = model.apply(params, changed, mask)
  changed_nll = heads.event_nll(changed_logits, changed, VOCAB_SIZES['category'])

  # Scores up to t are unchanged, and so is the prediction made for event t + 1.
  np.testing.assert_allclose(changed_nll[:, :t + 1], nll[:, :t + 1], rtol=1e-6)
  for head in ('key', 'gap'):
    np.testing.assert_allclose(
        changed_logits[head][:, :t + 2], logits[head][:, :t + 2], rtol=1e-6)
  # Later predictions do read event t + 1.
  assert not np.allclose(changed_logits['key'][:, t + 2:], logits['key'][:, t + 2:])


def _detector(num_steps=150):
  return neural.NeuralDetector('lstm-next', VOCAB_SIZES, tiny_neural_config(num_steps),
                               seed=0)


def test_training_fits_a_deterministic_pattern(pattern_windows):
  detector = _detector().fit(pattern_windows)
  losses = [entry['train/loss'] for entry in detector.loss_history]
  assert losses[-1] < 0.25 * losses[0]
  # The first event of a window has no context; the rest are predictable.
  scores = detector.decision_function(pattern_windows)
  assert scores.shape == (len(pattern_windows),)
  assert np.all(np.isfinite(scores))
  assert detector.timings['train_seq_per_s'] > 0
  assert detector.timings['train_compile_s'] > 0


def test_scores_ignore_padding_and_batch_layout(pattern_windows):
  detector = _detector(num_steps=20).fit(pattern_windows)
  scores = detector.decision_function(pattern_windows)

  # Garbage in the padded positions must not change any score.
  noisy_tokens = {f: np.where(pattern_windows.mask, v, 3)
                  for f, v in pattern_windows.tokens.items()}
  noisy = make_windows(noisy_tokens, pattern_windows.mask)
  np.testing.assert_allclose(detector.decision_function(noisy), scores, rtol=1e-6)

  # Scoring a subset (a different last-batch padding) gives the same scores.
  subset = np.arange(5, 40)
  np.testing.assert_allclose(
      detector.decision_function(pattern_windows.take(subset)), scores[subset], rtol=1e-6)
  assert len(detector._compiled_scorers) == 1  # One shape, one compilation.


def test_nan_loss_stops_training_with_the_step(pattern_windows):
  config = tiny_neural_config(num_steps=10)
  config.learning_rate = float('nan')
  detector = neural.NeuralDetector('lstm-next', VOCAB_SIZES, config, seed=0)
  with pytest.raises(FloatingPointError, match='step'):
    detector.fit(pattern_windows)


def test_padded_batches_cover_every_window_once(pattern_windows):
  seen = []
  for batch, valid in batching.padded_batches(pattern_windows, 24):
    assert batch['mask'].shape == (24, pattern_windows.length)
    assert not batch['mask'][valid:].any()
    seen.append(batch['tokens']['category'][:valid])
  np.testing.assert_array_equal(np.concatenate(seen), pattern_windows.tokens['category'])


@pytest.mark.parametrize('unroll', [1, 3])
def test_hand_written_backward_matches_autodiff(unroll):
  time_steps, batch, hidden = 9, 3, 5
  input_gates = jax.random.normal(jax.random.key(0), (time_steps, batch, 4 * hidden))
  kernel = 0.5 * jax.random.normal(jax.random.key(1), (hidden, 4 * hidden))
  weights = jax.random.normal(jax.random.key(2), (time_steps, batch, hidden))

  def loss(recurrence):
    return lambda gates, k: jnp.sum(weights * recurrence(gates, k, unroll) ** 2)

  np.testing.assert_allclose(
      lstm.lstm_recurrence(input_gates, kernel, unroll),
      lstm.lstm_recurrence_reference(input_gates, kernel, unroll), rtol=1e-6, atol=1e-6)
  fast = jax.grad(loss(lstm.lstm_recurrence), argnums=(0, 1))(input_gates, kernel)
  reference = jax.grad(loss(lstm.lstm_recurrence_reference), argnums=(0, 1))(
      input_gates, kernel)
  for got, want in zip(fast, reference):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
