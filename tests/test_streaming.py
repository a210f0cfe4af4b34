"""The streaming scorer equals window scoring, event by event, at a fixed cost per event."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import VOCAB_SIZES, tiny_neural_config
from seqad import streaming
from seqad.models import encoders
from seqad.models import objectives

STREAMS, TIME = 4, 11
# A full row, two padded rows and one that has not started.
LENGTHS = np.array([TIME, 7, 1, 0])
MASK = np.arange(TIME)[None, :] < LENGTHS[:, None]


def _objective(encoder, event_score='nll', num_layers=2):
  config = tiny_neural_config(2)
  config.encoder.num_layers = num_layers
  config.event_score = event_score
  config.top_k = 5
  return objectives.Objective(
      'next', VOCAB_SIZES, encoders.make_encoder(encoder, config.encoder, causal=True),
      config)


def _batch(seed):
  rng = np.random.default_rng(seed)
  tokens = {f: np.where(MASK, rng.integers(0, size, (STREAMS, TIME)), 0).astype(np.int32)
            for f, size in VOCAB_SIZES.items()}
  return {'tokens': tokens, 'mask': MASK}


def _random_params(objective, batch, seed=0):
  """Normal(0, 0.3) parameters: the equality must hold for any values."""
  shapes = jax.eval_shape(objective.init, jax.random.key(0), batch)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: (0.3 * rng.normal(size=s.shape)).astype(s.dtype), shapes)


@pytest.mark.parametrize('encoder, aggregation, event_score', [
    ('lstm', 'mean', 'nll'), ('gru', 'max', 'nll'), ('ssm', 'top_k', 'nll'),
    ('lstm', 'mean', 'top_k')])
def test_streamed_scores_equal_window_scores_event_by_event(encoder, aggregation,
                                                            event_score):
  objective = _objective(encoder, event_score)
  batch = _batch(1)
  params = _random_params(objective, batch)

  @jax.jit
  def window_scores(params, batch):
    # Window score of every prefix 0..t, for t = 0..TIME-1: [TIME, streams].
    event_scores = objective.event_scores(params, batch)
    prefix = lambda t: objectives.aggregate(
        event_scores, batch['mask'] & (jnp.arange(TIME) <= t), aggregation, k=3)
    return event_scores, jax.vmap(prefix)(jnp.arange(TIME))

  expected_events, expected_windows = map(np.asarray, window_scores(params, batch))

  scorer = streaming.StreamingScorer(objective, STREAMS, aggregation, k=3)
  state = scorer.initial_state(params)
  for t in range(TIME):
    tokens = {f: v[:, t] for f, v in batch['tokens'].items()}
    state, event_scores, windows = scorer.step(params, state, tokens, MASK[:, t])
    active = MASK[:, t]
    np.testing.assert_allclose(np.asarray(event_scores)[active],
                               expected_events[active, t], rtol=2e-5, atol=2e-5)
    np.testing.assert_array_equal(np.asarray(event_scores)[~active], 0.0)
    # Streams that have ended keep their final window score.
    np.testing.assert_allclose(windows, expected_windows[t], rtol=2e-5, atol=2e-5)
  np.testing.assert_array_equal(state.events, LENGTHS)
  # Every call after the first reused the one compiled step.
  assert scorer.compiled_steps() == 1


def test_reset_starts_a_stream_afresh_and_leaves_the_others():
  objective = _objective('gru', num_layers=1)
  batch = _batch(2)
  params = _random_params(objective, batch, seed=1)
  scorer = streaming.StreamingScorer(objective, STREAMS)
  full = {f: v[:, 0] for f, v in batch['tokens'].items()}

  def three_events(reset_stream_0):
    state = scorer.initial_state(params)
    scores = []
    for call in range(3):
      if call == 2 and reset_stream_0:
        state = scorer.reset(params, state, np.array([True, False, False, False]))
      state, event_scores, windows = scorer.step(params, state, full)
      scores.append(np.asarray(event_scores))
    return state, scores, np.asarray(windows)

  _, plain, _ = three_events(False)
  state, reset, windows = three_events(True)
  # Stream 0's third event scores as a first event does; the others as before.
  np.testing.assert_allclose(reset[2][0], plain[0][0], rtol=1e-6)
  np.testing.assert_allclose(reset[2][1:], plain[2][1:], rtol=1e-6)
  assert not np.allclose(plain[2][0], plain[0][0])
  np.testing.assert_array_equal(state.events, [1, 3, 3, 3])
  np.testing.assert_allclose(windows[0], plain[0][0], rtol=1e-6)


def test_what_cannot_stream_is_refused():
  config = tiny_neural_config(2)
  transformer = objectives.Objective(
      'next', VOCAB_SIZES, encoders.make_encoder('transformer', config.encoder, True),
      config)
  with pytest.raises(ValueError, match='no one-event step'):
    streaming.StreamingScorer(transformer, 2)
  masked = objectives.Objective(
      'masked', VOCAB_SIZES, encoders.make_encoder('lstm', config.encoder, False), config)
  with pytest.raises(ValueError, match='next-event'):
    streaming.StreamingScorer(masked, 2)
  with pytest.raises(ValueError, match='aggregation'):
    streaming.StreamingScorer(_objective('lstm'), 2, aggregation='median')
