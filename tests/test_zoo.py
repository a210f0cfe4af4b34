"""Every encoder x objective pair learns a deterministic pattern; scoring compiles once."""

import numpy as np
import pytest

from conftest import VOCAB_SIZES, make_windows, tiny_neural_config
from seqad import batching
from seqad.detectors import neural
from seqad.models import encoders
from seqad.models import objectives

PAIRS = [(e, o) for o in objectives.OBJECTIVES for e in encoders.ENCODERS]


@pytest.mark.parametrize('encoder,objective', PAIRS)
def test_pair_fits_a_deterministic_pattern(encoder, objective, pattern_windows):
  windows = pattern_windows
  if objective == 'sup':
    # The shorter windows are the 'anomalous' ones: learnable from the mask.
    windows = make_windows(windows.tokens, windows.mask,
                           kind=(windows.mask.sum(axis=1) < windows.length))
  detector = neural.NeuralDetector(f'{encoder}-{objective}', VOCAB_SIZES,
                                   tiny_neural_config(num_steps=300), seed=0).fit(windows)
  losses = [entry['train/loss'] for entry in detector.loss_history]
  # Next-event prediction cannot guess a window's first event, and the
  # autoencoder squeezes a window through a narrow code: looser bounds.
  bound = {'next': 0.3, 'ae': 0.15}.get(objective, 0.1)
  assert losses[-1] < bound * losses[0], losses

  scores = detector.decision_function(windows)
  assert scores.shape == (len(windows),) and np.all(np.isfinite(scores))


def test_second_scoring_call_with_the_same_shape_does_not_retrace(pattern_windows):
  detector = neural.NeuralDetector('gru-next', VOCAB_SIZES, tiny_neural_config(num_steps=3), seed=0)
  detector.fit(pattern_windows)
  traces = []

  def counting(method):
    def traced(params, batch):
      traces.append(1)  # Runs only while jax traces the function.
      return method(params, batch)
    return traced

  # Whichever the window score reads ('sum': event_scores, 'head_z': per head).
  detector.objective.event_scores = counting(detector.objective.event_scores)
  detector.objective.head_event_scores = counting(detector.objective.head_event_scores)
  first = detector.decision_function(pattern_windows)
  second = detector.decision_function(pattern_windows.take(np.arange(40)))
  assert len(traces) == 1
  np.testing.assert_allclose(second, first[:40], rtol=1e-6)


def test_aggregations_equal_numpy_references():
  rng = np.random.default_rng(0)
  event_scores = rng.normal(size=(5, 9)).astype(np.float32)
  lengths = np.array([9, 4, 1, 7, 2])
  mask = np.arange(9)[None, :] < lengths[:, None]
  for how, k in (('mean', 0), ('max', 0), ('top_k', 3)):
    got = np.asarray(objectives.aggregate(event_scores, mask, how, k))
    for row, length in enumerate(lengths):
      real = np.sort(event_scores[row, :length])[::-1]
      want = real[:k].mean() if how == 'top_k' else getattr(real, how)()
      np.testing.assert_allclose(got[row], want, rtol=1e-6)


def test_bad_names_and_missing_labels(pattern_windows):
  config = tiny_neural_config(num_steps=3)
  with pytest.raises(ValueError, match='encoder'):
    neural.NeuralDetector('cnn-next', VOCAB_SIZES, config, seed=0)
  with pytest.raises(ValueError, match='labelled anomalous'):
    neural.NeuralDetector('lstm-sup', VOCAB_SIZES, config, seed=0).fit(pattern_windows)
  with pytest.raises(ValueError, match='aggregation'):
    objectives.aggregate(np.zeros((1, 2)), np.ones((1, 2), bool), 'median')


@pytest.mark.parametrize('objective', ['next', 'masked'])
def test_heads_apart_sum_to_the_event_likelihood(objective, pattern_windows):
  config = tiny_neural_config(num_steps=3)
  detector = neural.NeuralDetector(f'gru-{objective}', VOCAB_SIZES, config, seed=0)
  detector.fit(pattern_windows)
  batch = batching.gather(pattern_windows, np.arange(8))
  per_head = np.asarray(detector.objective.head_event_scores(detector.params, batch))
  total = np.asarray(detector.objective.event_scores(detector.params, batch))
  assert per_head.shape == total.shape + (3,)
  np.testing.assert_allclose(per_head.sum(-1), total, rtol=1e-5, atol=1e-5)


def test_head_z_window_score_equals_a_numpy_reference(pattern_windows):
  config = tiny_neural_config(num_steps=20)
  config.window_score = 'head_z'
  config.aggregation = 'top_k'
  config.aggregation_k = 5
  train, test = pattern_windows.take(np.arange(40)), pattern_windows.take(np.arange(40, 64))
  detector = neural.NeuralDetector('lstm-next', VOCAB_SIZES, config, seed=0).fit(train)

  def head_window_scores(windows):
    batch = batching.gather(windows, np.arange(len(windows)))
    per_event = np.asarray(detector.objective.head_event_scores(detector.params, batch))
    out = np.zeros((len(windows), per_event.shape[-1]))
    for row in range(len(windows)):
      real = per_event[row][windows.mask[row]]
      out[row] = np.sort(real, axis=0)[::-1][:5].mean(axis=0)
    return out

  reference = head_window_scores(train)
  center = np.median(reference, axis=0)
  scale = 1.4826 * np.median(np.abs(reference - center), axis=0)
  want = np.maximum((head_window_scores(test) - center) / scale, 0).sum(axis=1)
  np.testing.assert_allclose(detector.decision_function(test), want, rtol=1e-4, atol=1e-4)

  with pytest.raises(ValueError, match='head_z'):
    top_k_config = tiny_neural_config(num_steps=3)
    top_k_config.window_score = 'head_z'
    top_k_config.event_score = 'top_k'
    neural.NeuralDetector('lstm-next', VOCAB_SIZES, top_k_config, seed=0)
