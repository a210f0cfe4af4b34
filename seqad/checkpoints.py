"""Training checkpoints on orbax: the latest state to resume from, and the best.

A checkpoint directory holds two orbax `CheckpointManager`s:

  latest/<step>/  the whole train state (parameters, optimizer state, step,
                  RNG key), the best parameters so far, and JSON metadata (the
                  early-stopping progress, timings and a fingerprint of the run);
                  the last two are kept. The data position is the step itself:
                  batch order is a pure function of (seed, step)
                  (`seqad.batching.BatchOrder`).
  best/<step>/    the parameters with the best validation loss, saved when they
                  improve: the checkpoint a user evaluates or ships.

Every save is synchronous and atomic (orbax writes to a temporary directory
and renames it), so a run killed at any point leaves only whole checkpoints.
A fingerprint (the training config, seeds, data size, model config) is stored
with each one; resuming from a directory written by a different run is an
error rather than a silent mix.
"""

import json
import logging as std_logging
import os
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp


class _OrbaxWarningsOnly(std_logging.Filter):
  """Drops orbax's INFO records (several long lines per save) from the absl log;
  seqad logs each save and restore itself."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname


logging.get_absl_logger().addFilter(_OrbaxWarningsOnly())


def _normalised(value: Any) -> Any:
  """`value` as it reads back from JSON (tuples become lists, keys strings)."""
  return json.loads(json.dumps(value, sort_keys=True, default=str))


class Checkpoints:
  """The latest and best checkpoints of one training run in `directory`."""

  def __init__(self, directory: str, fingerprint: dict):
    self.directory = os.path.abspath(directory)
    self.fingerprint = _normalised(fingerprint)
    options = dict(enable_async_checkpointing=False, create=True)
    self.latest = ocp.CheckpointManager(
        os.path.join(self.directory, 'latest'),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, **options))
    self.best = ocp.CheckpointManager(
        os.path.join(self.directory, 'best'),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, **options))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def restore_latest(self, like_state: Any,
                     check_fingerprint: bool = True) -> tuple[Any, Any, dict] | None:
    """(state, best parameters or None, metadata) of the latest checkpoint.

    Args:
      like_state: a state of the expected structure, shapes and dtypes.
      check_fingerprint: refuse a checkpoint of another run (see Raises).

    Returns:
      None when there is no checkpoint yet.

    Raises:
      ValueError: the checkpoint belongs to a run with another fingerprint.
    """
    step = self.latest_step()
    if step is None:
      return None
    meta = self.latest.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore())).meta
    if check_fingerprint and meta['fingerprint'] != self.fingerprint:
      changed = sorted(k for k in set(meta['fingerprint']) | set(self.fingerprint)
                       if meta['fingerprint'].get(k) != self.fingerprint.get(k))
      raise ValueError(
          f'{self.directory} holds checkpoints of a different run (differs in '
          f'{changed}); use a new workdir or delete it to start over.')

    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
    items = {'state': ocp.args.StandardRestore(abstract)}
    if meta['has_best']:
      items['best_params'] = ocp.args.StandardRestore(abstract.params)
    restored = self.latest.restore(step, args=ocp.args.Composite(**items))
    logging.info('Resuming from the checkpoint at step %d in %s.', step, self.directory)
    best = restored.best_params if meta['has_best'] else None
    return restored.state, best, meta

  def save_latest(self, step: int, state: Any, best_params: Any | None,
                  meta: dict) -> None:
    """Saves the state at `step` (host arrays), with the best parameters."""
    meta = {**meta, 'fingerprint': self.fingerprint, 'has_best': best_params is not None}
    items = {'state': ocp.args.StandardSave(state), 'meta': ocp.args.JsonSave(meta)}
    if best_params is not None:
      items['best_params'] = ocp.args.StandardSave(best_params)
    self.latest.save(step, args=ocp.args.Composite(**items), force=True)
    self.latest.wait_until_finished()
    logging.info('Saved the checkpoint of step %d in %s.', step, self.directory)

  def save_best(self, step: int, params: Any, meta: dict) -> None:
    """Saves improved parameters; a step saved before (by a killed run that is
    being replayed) already holds the same values and is left as it is."""
    if step in self.best.all_steps():
      return
    meta = {**meta, 'fingerprint': self.fingerprint}
    self.best.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params), meta=ocp.args.JsonSave(meta)), force=True)
    self.best.wait_until_finished()
