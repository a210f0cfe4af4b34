"""The training engine: parallel paths, accumulation, precision, seeds, checkpoints, guards.

Runs on the four fake CPU devices conftest.py sets up.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import VOCAB_SIZES, make_windows, tiny_neural_config
from seqad import batching
from seqad import checkpoints
from seqad import parallel
from seqad import training
from seqad.detectors import neural

# Loss trajectories of different device layouts differ only in the order of
# float sums (psum over devices vs one reduction); a few ulps per step.
PARALLEL_RTOL = 1e-4


def _config(num_steps=12, batch_size=10, **changes):
  config = tiny_neural_config(num_steps)
  config.batch_size = batch_size
  config.score_batch_size = batch_size
  config.log_every = 4
  config.eval_every = 0
  config.patience = 0
  config.checkpoint_every = 0
  config.update(changes)
  return config


def _losses(detector):
  return np.array([entry['train/loss'] for entry in detector.loss_history])


def _assert_trees_close(a, b, rtol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol)


def _assert_scores_close(actual, expected, rtol):
  # Window scores subtract the training median of each head's NLL, so a score
  # near zero keeps float32 rounding in absolute, not relative, terms: the
  # tolerance is relative to the largest score.
  np.testing.assert_allclose(actual, expected, rtol=rtol,
                             atol=rtol * np.abs(expected).max())


def test_four_devices_assumed():
  assert jax.device_count() == 4, 'conftest.py should fake four CPU devices'


def test_pmap_mesh_and_one_device_train_alike_and_score_every_window(pattern_windows):
  """A batch of 10 windows on 4 devices: padded to 12 masked rows for training;
  10 scored windows come back, none lost, in order."""
  runs = {}
  for mode in parallel.MODES:
    detector = neural.NeuralDetector('gru-masked', VOCAB_SIZES, _config(), seed=0,
                                     plan=parallel.DataParallel(mode))
    runs[mode] = detector.fit(pattern_windows)

  ten = pattern_windows.take(np.arange(10))
  single = runs['single']
  assert _losses(single)[-1] < _losses(single)[0]
  for mode in ('pmap', 'mesh'):
    np.testing.assert_allclose(_losses(runs[mode]), _losses(single), rtol=PARALLEL_RTOL)
    _assert_trees_close(runs[mode].params, single.params, rtol=PARALLEL_RTOL)
    scores = runs[mode].decision_function(ten)
    assert scores.shape == (10,)
    _assert_scores_close(scores, single.decision_function(ten), rtol=PARALLEL_RTOL)
  assert runs['pmap'].timings['train_devices'] == 4


def test_batch_order_is_a_function_of_the_step_and_covers_each_epoch():
  order = batching.BatchOrder(num_windows=7, batch_size=3, seed=5)
  stream = np.concatenate([order(step) for step in range(7)])  # 21 = 3 epochs
  for epoch in range(3):
    np.testing.assert_array_equal(np.sort(stream[7 * epoch:7 * (epoch + 1)]), np.arange(7))
  again = batching.BatchOrder(num_windows=7, batch_size=3, seed=5)
  np.testing.assert_array_equal(again(4), order(4))  # No state: resumable anywhere.
  assert not np.array_equal(batching.BatchOrder(7, 3, seed=6)(0), order(0))


def test_gradient_accumulation_takes_the_same_step(pattern_windows):
  whole = neural.NeuralDetector('lstm-next', VOCAB_SIZES, _config(batch_size=16), 0)
  split = neural.NeuralDetector('lstm-next', VOCAB_SIZES,
                                _config(batch_size=16, accumulation_steps=4), 0)
  whole.fit(pattern_windows)
  split.fit(pattern_windows)
  np.testing.assert_allclose(_losses(split), _losses(whole), rtol=PARALLEL_RTOL)
  _assert_trees_close(split.params, whole.params, rtol=PARALLEL_RTOL)


def test_bfloat16_compute_keeps_fp32_parameters(pattern_windows):
  full = neural.NeuralDetector('transformer-next', VOCAB_SIZES, _config(num_steps=20), 0)
  half = neural.NeuralDetector('transformer-next', VOCAB_SIZES,
                               _config(num_steps=20, compute_dtype='bfloat16'), 0)
  full.fit(pattern_windows)
  half.fit(pattern_windows)
  assert {x.dtype for x in jax.tree.leaves(half.params)} == {np.dtype(np.float32)}
  # bf16 has 8 bits of mantissa: the same descent, to about a percent.
  np.testing.assert_allclose(_losses(half), _losses(full), rtol=0.03)
  assert _losses(half)[-1] < 0.8 * _losses(half)[0]
  assert half.decision_function(pattern_windows).dtype == np.float64


def test_k_seeds_in_one_program_equal_k_separate_runs(pattern_windows):
  config = _config(num_steps=16, eval_every=4, patience=1, learning_rate=0.05)
  validation = pattern_windows.take(np.arange(0, 64, 3))
  seeds = [0, 1, 2]
  together = neural.fit_many('lstm-next', VOCAB_SIZES, config, seeds, pattern_windows,
                             validation)
  for seed, detector in zip(seeds, together):
    alone = neural.NeuralDetector('lstm-next', VOCAB_SIZES, config, seed)
    alone.fit(pattern_windows, validation)
    _assert_trees_close(detector.params, alone.params, rtol=1e-5)
    assert detector.timings['best_step'] == alone.timings['best_step']
    _assert_scores_close(detector.decision_function(validation),
                         alone.decision_function(validation), rtol=1e-5)
  # Different initialisations and orders give different models.
  assert not np.allclose(together[0].decision_function(validation),
                         together[1].decision_function(validation))


def test_the_best_parameters_by_validation_loss_are_returned(pattern_windows):
  # Half the validation windows follow the training pattern, half are random:
  # the validation loss falls while the model learns the pattern, then rises
  # as it grows confident.
  rng = np.random.default_rng(0)
  mask = pattern_windows.mask[:32]
  tokens = {f: np.concatenate([v[:16], np.where(mask[16:], rng.integers(
      0, VOCAB_SIZES[f], mask[16:].shape), 0)]) for f, v in pattern_windows.tokens.items()}
  validation = make_windows(tokens, mask)
  config = _config(num_steps=24, eval_every=2, warmup_steps=1)
  detector = neural.NeuralDetector('lstm-next', VOCAB_SIZES, config, 0)
  detector.fit(pattern_windows, validation)
  evals = [(e['step'], e['eval/loss']) for e in detector.loss_history if 'eval/loss' in e]
  best_step, best_loss = min(evals, key=lambda e: e[1])
  assert best_step != evals[-1][0], 'the setup should not end at its best'
  assert detector.timings['best_step'] == best_step

  # Recompute the validation loss of the returned parameters independently.
  batch = batching.gather(validation, np.arange(len(validation)))
  loss = detector.objective.loss(detector.params, batch, jax.random.key(0))
  np.testing.assert_allclose(float(loss), best_loss, rtol=1e-5)


class _Killed(Exception):
  pass


def _kill_at(step_to_die):
  def hook(step):
    if step == step_to_die:
      raise _Killed(step)
  return hook


def test_a_killed_run_resumes_to_the_same_parameters(pattern_windows, tmp_path):
  config = _config(num_steps=20, eval_every=4, checkpoint_every=6)
  validation = pattern_windows.take(np.arange(0, 64, 4))

  def detector(name):
    return neural.NeuralDetector('lstm-next', VOCAB_SIZES, config, 0,
                                 checkpoint_dir=str(tmp_path / name),
                                 log_path=str(tmp_path / f'{name}.jsonl'))

  uninterrupted = detector('whole').fit(pattern_windows, validation)

  killed = detector('killed')
  with pytest.raises(_Killed):
    training_hooks = [_kill_at(15)]  # After the checkpoint at step 12.
    neural.fit_seeds('lstm-next', killed.objective, config, [0], pattern_windows,
                     validation, killed.plan, killed.checkpoint_dir, killed.log_path,
                     hooks=training_hooks)
  assert checkpoints.Checkpoints(killed.checkpoint_dir, {}).latest_step() == 12

  resumed = detector('killed').fit(pattern_windows, validation)
  for got, want in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(uninterrupted.params)):
    np.testing.assert_array_equal(got, want)
  assert resumed.timings['best_step'] == uninterrupted.timings['best_step']
  # The JSON log has each step once (the killed run's steps after its last
  # checkpoint are dropped), with the uninterrupted run's losses.
  with open(tmp_path / 'killed.jsonl') as f:
    logged = [json.loads(line) for line in f]
  steps = [e['step'] for e in logged]
  assert steps == sorted(set(steps)) and steps[-1] == 20
  assert logged == resumed.loss_history
  reference = {e['step']: e['train/loss'] for e in uninterrupted.loss_history}
  for entry in logged:
    if entry['step'] in reference:
      assert entry['train/loss'] == reference[entry['step']]

  # A finished run is not trained again, and another config does not resume.
  again = detector('killed').fit(pattern_windows, validation)
  for got, want in zip(jax.tree.leaves(again.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(got, want)
  changed = neural.NeuralDetector('lstm-next', VOCAB_SIZES, _config(num_steps=21), 0,
                                  checkpoint_dir=killed.checkpoint_dir)
  with pytest.raises(ValueError, match='different run'):
    changed.fit(pattern_windows, validation)


def test_nan_learning_rate_stops_at_its_step_keeping_the_last_good_checkpoint(
    pattern_windows, tmp_path):
  objective = neural.NeuralDetector('lstm-next', VOCAB_SIZES, _config(), 0).objective
  example = batching.gather(pattern_windows, np.arange(4))
  params = jax.jit(objective.init)(jax.random.key(0), example)
  # A schedule that turns NaN at step 5.
  optimizer = optax.adam(lambda step: jnp.where(step < 5, 1e-3, jnp.nan))
  config = training.TrainConfig(num_steps=12, batch_size=8, log_every=3,
                                checkpoint_every=2)
  with pytest.raises(training.NonFiniteLossError,
                     match=r'non-finite at step 5.*checkpoint \(step 4\)'):
    training.train(objective.loss_terms, [params], optimizer, pattern_windows, config,
                   [0], checkpoint_dir=str(tmp_path))

  like = jax.device_get(training.init_state(params, optimizer, 0))
  like = jax.tree.map(lambda x: np.asarray(x)[None], like)
  state, _, _ = checkpoints.Checkpoints(str(tmp_path), {}).restore_latest(
      like, check_fingerprint=False)
  assert int(state.step[0]) == 4
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_the_step_compiles_once_and_the_timed_loop_forbids_implicit_transfers(
    pattern_windows):
  detector = neural.NeuralDetector('lstm-next', VOCAB_SIZES, _config(), 0)
  traces = []
  loss_terms = detector.objective.loss_terms

  def counted(params, batch, rng):
    traces.append(batch['mask'].shape)  # Runs only while jax traces.
    return loss_terms(params, batch, rng)

  validation = pattern_windows.take(np.arange(20))
  example = batching.gather(pattern_windows, np.arange(4))
  params = jax.jit(detector.objective.init)(jax.random.key(0), example)
  config = training.TrainConfig(num_steps=12, batch_size=10, log_every=4, eval_every=4,
                                eval_batch_size=8)
  optimizer = optax.adam(1e-3)
  training.train(counted, [params], optimizer, pattern_windows, config, [0],
                 validation_windows=validation)
  # One trace of the training step, one of the validation loss: 12 steps, 3
  # validations of 3 batches each (the last padded) and no retrace.
  assert traces == [(10, 12), (8, 12)], traces

  def implicit_transfer(step):
    del step
    np.asarray(jnp.ones(()) + 1)  # A device-to-host copy nobody asked for.

  with pytest.raises(Exception, match='[Dd]isallowed'):
    training.train(counted, [params], optimizer, pattern_windows, config, [0],
                   validation_windows=validation, hooks=[implicit_transfer])
