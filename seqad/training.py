"""The training step and loop shared by the neural detectors.

`make_train_step` builds a pure step, (state, batch) -> (state, metrics), from
a loss given as (summed loss, weight): summed terms add up exactly over the
shards of a data-parallel batch and over micro-batches, so one device, `pmap`,
a sharded `jit` and gradient accumulation all take the same step for the same
global batch. Devices are `seqad.parallel`'s business; the step only calls its
`sum_across` hook.

`train` runs K seeds of one model at once (K = 1 for a single run): one
compiled step, `vmap`ped over K parameter sets, initialisations and data
orders when K > 1, so repeats cost one compilation. Around it: validation loss
and early stopping (the best parameters, not the last, are returned),
periodic and best orbax checkpoints from which a killed run resumes to exactly
the parameters of an uninterrupted one (`seqad.checkpoints`), a stop with the
step number on a non-finite loss, donated train state, a transfer guard over
the timed loop, and logging to absl and to JSON lines.
"""

import dataclasses
import json
import os
import time
from typing import Any, Callable, Sequence

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqad import batching
from seqad import checkpoints as checkpoints_lib
from seqad import parallel
from seqad.data import windows as windows_lib

# loss_fn(params, batch, rng) -> (summed loss, weight), fp32 scalars; the loss
# is their ratio. `rng` differs at every step; `batch` may carry 'row' ids.
LossFn = Callable[[Any, dict, jax.Array], tuple[jnp.ndarray, jnp.ndarray]]

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


@flax.struct.dataclass
class TrainState:
  """Everything a training step reads and writes; checkpointed whole.

  Attributes:
    step: [] int32, steps taken.
    params: the model parameters (fp32).
    opt_state: the optimizer state (fp32).
    rng: [2] uint32 key data of the run's base key; step s draws from
      `fold_in(base key, s)`, so the key stream resumes with the step.
    bad_step: [] int32, the first step whose loss or gradient was not finite
      (its update was skipped), or -1.
  """

  step: jnp.ndarray
  params: Any
  opt_state: Any
  rng: jnp.ndarray
  bad_step: jnp.ndarray


def init_state(params: Any, optimizer: optax.GradientTransformation,
               seed: int) -> TrainState:
  """A fresh state at step 0 for `params`."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params),
                    rng=jax.random.key_data(jax.random.key(seed)),
                    bad_step=jnp.full((), -1, jnp.int32))


def make_optimizer(learning_rate: float, weight_decay: float, clip_norm: float,
                   warmup_steps: int, num_steps: int) -> optax.GradientTransformation:
  """AdamW with linear warmup and cosine decay, after global-norm clipping."""
  schedule = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=learning_rate, warmup_steps=max(warmup_steps, 1),
      decay_steps=max(num_steps, warmup_steps + 1), end_value=0.1 * learning_rate)
  return optax.chain(
      optax.clip_by_global_norm(clip_norm),
      optax.adamw(schedule, weight_decay=weight_decay))


def cast_floating(tree: Any, dtype) -> Any:
  """Every floating-point leaf of `tree` cast to `dtype` (others unchanged)."""
  def cast(x):
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
  return jax.tree.map(cast, tree)


def _micro_batches(batch: dict, count: int) -> dict:
  """[rows, ...] -> [count, rows / count, ...] for every array of `batch`."""
  def split(x):
    if x.shape[0] % count:
      raise ValueError(f'{x.shape[0]} rows per device do not divide into '
                       f'{count} micro-batches.')
    return x.reshape((count, x.shape[0] // count) + x.shape[1:])
  return jax.tree.map(split, batch)


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, *,
                    sum_across: Callable[[Any], Any] = lambda x: x,
                    accumulation_steps: int = 1, compute_dtype=jnp.float32):
  """A pure step (state, batch) -> (state, {'loss', 'grad_norm'}).

  Args:
    loss_fn: see `LossFn`.
    optimizer: applied to the summed gradient divided by the summed weight.
    sum_across: totals a value over the shards of a batch
      (`seqad.parallel.DataParallel.sum_across`); identity on one device.
    accumulation_steps: the batch is split into this many micro-batches whose
      gradients are summed before the one update (less memory, same step).
    compute_dtype: dtype of the forward and backward pass; parameters, the
      optimizer state, loss and gradients stay fp32.

  A step whose loss, gradient or update is not finite leaves parameters and
  optimizer state unchanged and records itself in `state.bad_step`.
  """
  low_precision = compute_dtype != jnp.float32

  def summed_loss(params, batch, rng):
    if low_precision:
      params = cast_floating(params, compute_dtype)
    loss_sum, weight = loss_fn(params, batch, rng)
    return loss_sum.astype(jnp.float32), weight.astype(jnp.float32)

  grad_fn = jax.value_and_grad(summed_loss, has_aux=True)

  def accumulated(params, batch, rng):
    """(loss sum, weight, gradient sum) of one device's rows."""
    if accumulation_steps == 1:
      (loss_sum, weight), grads = grad_fn(params, batch, rng)
      return loss_sum, weight, grads

    def add_micro_batch(totals, micro_batch):
      (loss_sum, weight), grads = grad_fn(params, micro_batch, rng)
      return jax.tree.map(jnp.add, totals, (loss_sum, weight, grads)), None

    zeros = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32),
             jax.tree.map(jnp.zeros_like, params))
    totals, _ = jax.lax.scan(add_micro_batch, zeros,
                             _micro_batches(batch, accumulation_steps))
    return totals

  def train_step(state: TrainState, batch: dict):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    loss_sum, weight, grads = sum_across(accumulated(state.params, batch, rng))
    weight = jnp.maximum(weight, 1.0)
    loss = loss_sum / weight
    grads = jax.tree.map(lambda g: g / weight, grads)
    grad_norm = optax.tree.norm(grads)

    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # A non-finite learning rate poisons the update, not the loss: check both.
    finite = (jnp.isfinite(loss) & jnp.isfinite(grad_norm) &
              jnp.isfinite(optax.tree.norm(updates)))
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    bad_step = jnp.where(finite | (state.bad_step >= 0), state.bad_step, state.step)
    new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                              opt_state=keep(opt_state, state.opt_state),
                              bad_step=bad_step)
    return new_state, {'loss': loss, 'grad_norm': grad_norm}

  return train_step


def make_eval_step(loss_fn: LossFn, compute_dtype=jnp.float32,
                   sum_across: Callable[[Any], Any] = lambda x: x):
  """(params, rng data, batch) -> (summed loss, weight) with no update."""
  def eval_step(params, rng, batch):
    if compute_dtype != jnp.float32:
      params = cast_floating(params, compute_dtype)
    loss_sum, weight = loss_fn(params, batch, jax.random.wrap_key_data(rng))
    return sum_across((loss_sum.astype(jnp.float32), weight.astype(jnp.float32)))
  return eval_step


def over_seeds(step: Callable, num_seeds: int, masked: bool) -> Callable:
  """`step` lifted to states and batches with a leading [num_seeds] axis.

  K = 1 squeezes the axis away (no vmap cost, never masked); K > 1 vmaps. With `masked`,
  the lifted step takes an extra [K] bool `active` and seeds that are not
  active keep their state, so an early-stopped seed freezes as its own run
  would have stopped.
  """
  if num_seeds == 1:
    def single(state, batch):
      out = step(*jax.tree.map(lambda x: x[0], (state, batch)))
      return jax.tree.map(lambda x: x[None], out)
    return single

  vmapped = jax.vmap(step)
  if not masked:
    return vmapped

  def frozen_unless_active(state, batch, active):
    new_state, metrics = vmapped(state, batch)
    def select(new, old):
      return jnp.where(active.reshape(active.shape + (1,) * (new.ndim - 1)), new, old)
    return jax.tree.map(select, new_state, state), metrics
  return frozen_unless_active


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How long and how to train; read from a detector's config section.

  Attributes:
    num_steps: training steps (at least 2).
    batch_size: windows per step and seed, over all devices.
    log_every: steps between log lines (the first steps 1, 2, 4, ... too).
    eval_every: steps between validation losses (0: no validation; the last
      parameters are returned).
    patience: evaluations without improvement before a seed stops (0: never).
    checkpoint_every: steps between checkpoints when a directory is given.
    accumulation_steps: micro-batches per step per device.
    compute_dtype: 'float32' or 'bfloat16' forward and backward passes.
    eval_batch_size: windows per validation batch (rounded up to the devices).
  """

  num_steps: int
  batch_size: int
  log_every: int = 100
  eval_every: int = 0
  patience: int = 0
  checkpoint_every: int = 0
  accumulation_steps: int = 1
  compute_dtype: str = 'float32'
  eval_batch_size: int = 256

  def __post_init__(self):
    if self.num_steps < 2:
      raise ValueError(f'num_steps must be at least 2, got {self.num_steps}.')
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f'compute_dtype must be one of {tuple(COMPUTE_DTYPES)}, '
                       f'got {self.compute_dtype!r}.')
    for name in ('batch_size', 'log_every', 'accumulation_steps', 'eval_batch_size'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be positive, got {getattr(self, name)}.')

  @classmethod
  def from_config(cls, config) -> 'TrainConfig':
    """From a `neural` config section (fields of the same names)."""
    return cls(**{f.name: config[f.name] for f in dataclasses.fields(cls)
                  if f.name in config})


def _log_steps(config: TrainConfig) -> set[int]:
  """Steps after which metrics are read back and logged."""
  steps = {1 << i for i in range(config.log_every.bit_length()) if 1 << i < config.log_every}
  steps |= set(range(config.log_every, config.num_steps, config.log_every))
  return steps | {config.num_steps}


class _JsonLog:
  """Appends one JSON object per line; on resume, drops lines after the step."""

  def __init__(self, path: str | None, resume_step: int):
    self.path = path
    if not path:
      return
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    kept = []
    if resume_step and os.path.exists(path):
      with open(path) as f:
        kept = [line for line in f if json.loads(line).get('step', 0) <= resume_step]
    with open(path + '.tmp', 'w') as f:
      f.writelines(kept)
    os.replace(path + '.tmp', path)

  def write(self, record: dict) -> None:
    if self.path:
      with open(self.path, 'a') as f:
        f.write(json.dumps(record) + '\n')


@dataclasses.dataclass
class _Progress:
  """Per-seed early stopping state; host side, checkpointed as JSON."""

  best_loss: list
  best_step: list
  evals_since_best: list
  active: list
  history: list

  @classmethod
  def fresh(cls, num_seeds: int) -> '_Progress':
    return cls([float('inf')] * num_seeds, [-1] * num_seeds, [0] * num_seeds,
               [True] * num_seeds, [])


class NonFiniteLossError(FloatingPointError):
  """The training loss or gradient became NaN or infinite."""


def train(loss_fn: LossFn, init_params: Sequence[Any],
          optimizer: optax.GradientTransformation,
          train_windows: windows_lib.Windows, config: TrainConfig, seeds: Sequence[int],
          *, validation_windows: windows_lib.Windows | None = None,
          plan: parallel.DataParallel | None = None, with_labels: bool = False,
          checkpoint_dir: str | None = None, log_path: str | None = None,
          fingerprint: dict | None = None,
          hooks: Sequence[Callable[[int], None]] = ()) -> tuple[list, dict]:
  """Trains one parameter set per seed, all in one compiled step.

  Args:
    loss_fn: see `LossFn`.
    init_params: K initial parameter trees (host or device), one per seed.
    optimizer: the optax transformation of every seed.
    train_windows: the training windows; seed k draws its batches in its own
      order, `batching.BatchOrder(len(train_windows), batch_size, seeds[k])`.
    config: steps, batch, logging, validation, checkpoint and precision.
    seeds: K seeds: data order and per-step random keys of each run.
    validation_windows: windows of the validation loss (needed when
      `config.eval_every` > 0).
    plan: where the step runs (default: one device).
    with_labels: batches carry 'label' (supervised objectives only).
    checkpoint_dir: where checkpoints go and a killed run resumes from.
    log_path: JSON-lines log of every logged step.
    fingerprint: what must match for a checkpoint to be resumed (e.g. the
      model config); the training config and seeds are always part of it.
    hooks: called with the step number after every step is dispatched (tests
      use one to kill a run).

  Returns:
    ([K] host parameter trees: the best by validation loss, else the last),
    stats: timings, per-seed best steps and losses, the loss history.

  Raises:
    NonFiniteLossError: a loss or gradient became non-finite; names the step
      and the last good checkpoint, which is kept.
  """
  plan = plan or parallel.DataParallel('single')
  num_seeds = len(seeds)
  if len(init_params) != num_seeds:
    raise ValueError(f'{len(init_params)} initial parameter sets for {num_seeds} seeds.')
  if config.eval_every and validation_windows is None:
    raise ValueError('eval_every > 0 needs validation windows.')
  compute_dtype = COMPUTE_DTYPES[config.compute_dtype]
  per_seed_rows = config.batch_size + (-config.batch_size % plan.num_shards)
  if per_seed_rows // plan.num_shards % config.accumulation_steps:
    raise ValueError(f'{per_seed_rows // plan.num_shards} windows per device do not '
                     f'divide into {config.accumulation_steps} micro-batches.')
  if per_seed_rows != config.batch_size:
    logging.info('Batch of %d padded to %d masked rows for %d devices.',
                 config.batch_size, per_seed_rows, plan.num_shards)

  # The stacked host state and, when a checkpoint exists, where it left off.
  host_state = jax.tree.map(lambda *xs: np.stack(xs), *[
      jax.device_get(init_state(p, optimizer, s)) for p, s in zip(init_params, seeds)])
  progress = _Progress.fresh(num_seeds)
  best_params = host_state.params
  checkpoints = None
  if checkpoint_dir:
    key = {'train': dataclasses.asdict(config), 'seeds': list(seeds),
           'train_windows': len(train_windows), **(fingerprint or {})}
    checkpoints = checkpoints_lib.Checkpoints(checkpoint_dir, key)
    restored = checkpoints.restore_latest(host_state)
    if restored is not None:
      host_state, restored_best, meta = restored
      best_params = host_state.params if restored_best is None else restored_best
      progress = _Progress(**meta['progress'])
      if meta['finished']:
        logging.info('Training in %s had finished; using its result.', checkpoint_dir)
        return _result(best_params if config.eval_every else host_state.params,
                       host_state, progress, num_seeds, meta['stats'])
  start_step = int(host_state.step.max())  # Early-stopped seeds froze before.
  json_log = _JsonLog(log_path, start_step)

  def is_checkpoint_step(step: int) -> bool:
    return bool(checkpoints and config.checkpoint_every and
                step % config.checkpoint_every == 0)

  def is_eval_step(step: int) -> bool:
    return bool(config.eval_every and step % config.eval_every == 0)

  orders = [batching.BatchOrder(len(train_windows), config.batch_size, s) for s in seeds]

  def device_batch(step: int) -> dict:
    """[K, rows, ...] batch of `step`: padded for the devices, this process's rows."""
    index = np.stack([order(step) for order in orders])
    batch = batching.with_row_ids(batching.gather(train_windows, index, with_labels), 1)
    batch, _ = parallel.pad_rows(batch, plan.num_shards, batch_axis=1)
    rows = plan.process_rows(per_seed_rows)
    return plan.put_batch(jax.tree.map(lambda x: x[:, rows], batch), batch_axis=1)

  # Compile the step once, for its one shape.
  step_fn = over_seeds(make_train_step(
      loss_fn, optimizer, sum_across=plan.sum_across,
      accumulation_steps=config.accumulation_steps, compute_dtype=compute_dtype),
      num_seeds, masked=num_seeds > 1)
  state = plan.put_replicated(host_state)
  batch = device_batch(start_step)
  active = (plan.put_replicated(np.array(progress.active)),) if num_seeds > 1 else ()
  compile_start = time.perf_counter()
  compiled_step = plan.compile(step_fn, state, batch, *active, donate_argnums=(0,))
  compile_s = time.perf_counter() - compile_start
  logging.info('Compiled the training step for %d seed(s) on %s in %.2f s.', num_seeds,
               plan, compile_s)

  validation = (_Validation(loss_fn, validation_windows, config, plan, num_seeds,
                            compute_dtype, with_labels) if config.eval_every else None)
  best = plan.put_replicated(best_params) if validation else None
  select_best = jax.jit(lambda best, params, improved: jax.tree.map(
      lambda b, p: jnp.where(improved.reshape((-1,) + (1,) * (p.ndim - 1)), p, b),
      best, params))

  # Steps run in regions that end where the host must look: a log, validation
  # or checkpoint step. The first step (warm-up) is a region of its own and
  # is not timed; validation and checkpoints fall outside the timed regions.
  stops = _log_steps(config) | {start_step + 1}
  timed_s, timed_steps = 0.0, 0
  windows_per_step = num_seeds * config.batch_size
  step = start_step
  while step < config.num_steps and any(progress.active):
    region_start, region_first = time.perf_counter(), step
    with jax.transfer_guard('disallow'):
      while True:
        if batch is None:
          batch = device_batch(step)
        state, metrics = compiled_step(state, batch, *active)
        batch = None
        step += 1
        for hook in hooks:
          hook(step)
        if step in stops or is_eval_step(step) or is_checkpoint_step(step):
          break
      values = plan.get_replicated({'metrics': metrics, 'bad_step': state.bad_step})
    if region_first > start_step:
      timed_s += time.perf_counter() - region_start
      timed_steps += step - region_first

    bad = [int(s) for s in np.atleast_1d(values['bad_step']) if s >= 0]
    if bad:
      last_good = checkpoints.latest_step() if checkpoints else None
      kept = (f'the last good checkpoint (step {last_good}) is kept in {checkpoint_dir}'
              if last_good is not None else 'no checkpoint was written')
      raise NonFiniteLossError(
          f'Training loss or gradient became non-finite at step {min(bad)}; stopped; '
          f'{kept}. Lower the learning rate or check the data.')

    record = {'step': step, 'train/loss': _per_seed(values['metrics']['loss']),
              'train/grad_norm': _per_seed(values['metrics']['grad_norm'])}
    if timed_steps:
      seq_per_s = windows_per_step * timed_steps / timed_s
      record.update({'perf/seq_per_s': seq_per_s,
                     'perf/seq_per_s_per_device': seq_per_s / plan.num_shards,
                     'perf/eta_s': (config.num_steps - step) * timed_s / timed_steps})

    if is_eval_step(step):
      losses = validation(state)
      record['eval/loss'] = _per_seed(losses)
      improved = _early_stopping(progress, losses, step, config.patience, seeds)
      if improved.any():
        best = select_best(best, state.params, plan.put_replicated(improved))
        if checkpoints:
          checkpoints.save_best(step, plan.get_replicated(best),
                                {'best_step': progress.best_step,
                                 'best_loss': progress.best_loss})
      if num_seeds > 1:
        active = (plan.put_replicated(np.array(progress.active)),)

    progress.history.append(record)
    json_log.write(record)
    _log_line(record, config.num_steps, num_seeds)
    finished = step >= config.num_steps or not any(progress.active)
    if checkpoints and (is_checkpoint_step(step) or finished):
      checkpoints.save_latest(
          step, plan.get_replicated(state),
          plan.get_replicated(best) if validation else None,
          {'progress': dataclasses.asdict(progress), 'finished': finished,
           'stats': _stats(compile_s, timed_s, timed_steps, windows_per_step, plan)})

  final = plan.get_replicated(best if validation else state.params)
  stats = _stats(compile_s, timed_s, timed_steps, windows_per_step, plan)
  return _result(final, plan.get_replicated(state), progress, num_seeds, stats)


def _early_stopping(progress: _Progress, losses: np.ndarray, step: int, patience: int,
                    seeds: Sequence[int]) -> np.ndarray:
  """Updates `progress` with validation `losses` [K]; returns [K] improved."""
  improved = np.zeros(len(losses), bool)
  for k, loss in enumerate(losses):
    if not progress.active[k]:
      continue
    if loss < progress.best_loss[k]:
      improved[k] = True
      progress.best_loss[k], progress.best_step[k] = float(loss), step
      progress.evals_since_best[k] = 0
      continue
    progress.evals_since_best[k] += 1
    if patience and progress.evals_since_best[k] >= patience:
      progress.active[k] = False
      logging.info('Seed %d stops early at step %d: best validation loss %.4f at '
                   'step %d.', seeds[k], step, progress.best_loss[k],
                   progress.best_step[k])
  return improved


class _Validation:
  """The validation loss of every seed, summed over padded, sharded batches."""

  def __init__(self, loss_fn, windows, config, plan, num_seeds, compute_dtype,
               with_labels):
    if len(windows) == 0:
      raise ValueError('eval_every > 0 needs at least one validation window.')
    self.plan = plan
    size = config.eval_batch_size + (-config.eval_batch_size % plan.num_shards)
    self.batches = []
    for start in range(0, len(windows), size):
      index = np.arange(start, min(start + size, len(windows)))
      batch = batching.with_row_ids(batching.gather(windows, index, with_labels))
      batch, _ = parallel.pad_rows(batch, size)
      self.batches.append(jax.tree.map(lambda x: x[plan.process_rows(size)], batch))

    step = make_eval_step(loss_fn, compute_dtype, plan.sum_across)
    if num_seeds > 1:
      self.step = jax.vmap(step, in_axes=(0, 0, None))
    else:
      def one_seed(params, rng, batch):
        out = step(jax.tree.map(lambda p: p[0], params), rng[0], batch)
        return jax.tree.map(lambda x: x[None], out)
      self.step = one_seed
    self.compiled = None

  def __call__(self, state: TrainState) -> np.ndarray:
    """[K] validation losses of `state`'s parameters."""
    totals = None
    for host_batch in self.batches:
      batch = self.plan.put_batch(host_batch)
      if self.compiled is None:
        self.compiled = self.plan.compile(self.step, state.params, state.rng, batch)
      out = self.compiled(state.params, state.rng, batch)
      totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
    loss_sum, weight = self.plan.get_replicated(totals)
    return np.asarray(loss_sum, np.float64) / np.maximum(np.asarray(weight), 1.0)


def _per_seed(values) -> float | list[float]:
  values = np.atleast_1d(np.asarray(values, np.float64))
  return float(values[0]) if len(values) == 1 else [float(v) for v in values]


def _log_line(record: dict, num_steps: int, num_seeds: int) -> None:
  loss = np.atleast_1d(record['train/loss'])
  text = f"step {record['step']}/{num_steps}  loss {np.mean(loss):.4f}"
  if num_seeds > 1:
    text += f' (seeds {np.min(loss):.4f}..{np.max(loss):.4f})'
  if 'eval/loss' in record:
    text += f"  validation {np.mean(np.atleast_1d(record['eval/loss'])):.4f}"
  if 'perf/seq_per_s' in record:
    text += (f"  {record['perf/seq_per_s']:.0f} seq/s "
             f"({record['perf/seq_per_s_per_device']:.0f}/device)  "
             f"~{record['perf/eta_s']:.0f} s left")
  logging.info(text)


def _stats(compile_s, timed_s, timed_steps, windows_per_step, plan) -> dict:
  seq_per_s = windows_per_step * timed_steps / timed_s if timed_steps else None
  return {'train_compile_s': compile_s, 'train_s': timed_s,
          'train_seq_per_s': seq_per_s, 'train_devices': plan.num_shards,
          'parallel': plan.mode}


def _result(params, host_state, progress, num_seeds, stats):
  per_seed = [jax.tree.map(lambda x: np.asarray(x[k]), params) for k in range(num_seeds)]
  stats = {**stats, 'steps': int(host_state.step.max()),
           'best_step': progress.best_step, 'best_validation_loss': progress.best_loss,
           'loss_history': progress.history}
  return per_seed, stats
