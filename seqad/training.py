"""The jitted training loop shared by the neural detectors (single device)."""

import time
from typing import Any, Callable

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqad import batching
from seqad.data import windows as windows_lib

# loss_fn(params, batch, rng) -> scalar; rng differs at every step.
LossFn = Callable[[Any, dict, jax.Array], jnp.ndarray]


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  params: Any
  opt_state: Any


def make_optimizer(learning_rate: float, weight_decay: float, clip_norm: float,
                   warmup_steps: int, num_steps: int) -> optax.GradientTransformation:
  """AdamW with linear warmup and cosine decay, after global-norm clipping."""
  schedule = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=learning_rate, warmup_steps=max(warmup_steps, 1),
      decay_steps=max(num_steps, warmup_steps + 1), end_value=0.1 * learning_rate)
  return optax.chain(
      optax.clip_by_global_norm(clip_norm),
      optax.adamw(schedule, weight_decay=weight_decay))


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation,
                    seed: int = 0):
  """A pure step (state, batch) -> (state, loss); jit and devices are the caller's.

  The step's random key is derived from `seed` and the step number, so a run is
  reproducible and a resumed run draws the same keys.
  """
  base_key = jax.random.key(seed)

  def train_step(state: TrainState, batch: dict):
    rng = jax.random.fold_in(base_key, state.step)
    loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, rng)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(state.step + 1, params, opt_state), loss

  return train_step


def train(loss_fn: LossFn, params: Any, optimizer: optax.GradientTransformation,
          train_windows: windows_lib.Windows, *, num_steps: int, batch_size: int,
          seed: int, log_every: int = 100,
          with_labels: bool = False) -> tuple[Any, dict]:
  """Trains `params` for `num_steps` steps on shuffled batches of `train_windows`.

  The step is compiled ahead of time so that compile time is measured on its
  own; throughput counts the steps after the first executed one, timed up to a
  `block_until_ready` on the final state.

  Returns:
    The trained parameters and a dict of timings and the loss history
    (read back on logging steps only).

  Raises:
    FloatingPointError: the loss became NaN or infinite; names the step.
  """
  if num_steps < 2:
    raise ValueError(f'num_steps must be at least 2, got {num_steps}.')
  state = TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))
  batches = batching.shuffled_indices(len(train_windows), batch_size, seed)
  first_batch = batching.gather(train_windows, next(batches), with_labels)

  start = time.perf_counter()
  step_fn = jax.jit(make_train_step(loss_fn, optimizer, seed), donate_argnums=0)
  compiled_step = step_fn.lower(state, first_batch).compile()
  compile_s = time.perf_counter() - start
  logging.info('Compiled the training step in %.2f s.', compile_s)

  state, loss = compiled_step(state, first_batch)
  first_loss = float(loss)
  if not np.isfinite(first_loss):
    raise FloatingPointError(f'Training loss became {first_loss} at step 0; stopping.')
  logging.info('step 0/%d  loss %.4f', num_steps, first_loss)
  history = [{'step': 0, 'loss': first_loss}]
  timed_start = time.perf_counter()
  for step in range(1, num_steps):
    batch = batching.gather(train_windows, next(batches), with_labels)
    state, loss = compiled_step(state, batch)
    if step % log_every == 0 or step == num_steps - 1:
      loss_value = float(loss)
      if not np.isfinite(loss_value):
        raise FloatingPointError(
            f'Training loss became {loss_value} at step {step}; stopping.')
      elapsed = time.perf_counter() - timed_start
      seq_per_s = step * batch_size / elapsed
      logging.info('step %d/%d  loss %.4f  %.0f seq/s  ~%.0f s left', step, num_steps,
                   loss_value, seq_per_s, (num_steps - step) * batch_size / seq_per_s)
      history.append({'step': step, 'loss': loss_value})
  jax.block_until_ready(state)
  train_s = time.perf_counter() - timed_start

  stats = {
      'train_compile_s': compile_s,
      'train_s': train_s,
      'train_seq_per_s': (num_steps - 1) * batch_size / train_s,
      'loss_history': history,
  }
  return state.params, stats
