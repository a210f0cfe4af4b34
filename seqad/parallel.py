"""Where the training step runs: one device, `pmap` over devices, or `jit` on a mesh.

Model and step code never see devices. A step is written for a whole batch with
one hook for data parallelism, `sum_across(x)`, which totals a per-shard value
over every shard of the batch. Under `jit` (one device, or a mesh, whose arrays
are global) a batch is already whole and `sum_across` is the identity; under
`pmap` each device holds one shard and it is `lax.psum` over the device axis.
This module supplies that hook, places batches and train state on the devices,
compiles steps for them and reads results back.

Modes (`DataParallel(mode=...)`):
  single  the default device.
  pmap    `jax.pmap` over this host's devices: batches get a leading device
          axis, the train state is replicated along it. Single-host.
  mesh    `jax.jit` over a `Mesh` with one 'data' axis over every device of
          every process: batches are sharded along their batch axis with a
          `NamedSharding`, parameters replicated. Each process supplies only
          its own rows of every global batch (`process_rows`), so this is the
          path that runs multi-host (`initialize_distributed`).

A batch is a pytree of arrays sharing a batch (row) axis, at `batch_axis`
(0, or 1 when a leading seed axis comes first). Rows that do not divide among
the shards are padded with fully masked rows (`pad_rows`), which every loss
and score in seqad ignores; `gather_rows` drops them again, so evaluation
never loses or duplicates a sample.
"""

from typing import Any, Callable, Sequence

from absl import logging
import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

MODES = ('single', 'pmap', 'mesh')
AXIS = 'data'  # The device axis: pmap's axis name and the mesh's axis.


def initialize_distributed(coordinator_address: str, num_processes: int,
                           process_id: int) -> None:
  """Joins a multi-host run through `jax.distributed` (a no-op for one process).

  Every process calls this with the same coordinator ('host:port') and process
  count and its own id, before any other JAX call; afterwards `jax.devices()`
  lists the devices of every process and the 'mesh' mode spans them all.
  """
  if num_processes <= 1:
    return
  if not coordinator_address:
    raise ValueError('A run of several processes needs --coordinator_address.')
  if not 0 <= process_id < num_processes:
    raise ValueError(f'--process_id must lie in [0, {num_processes}), got {process_id}.')
  # CPU devices of different processes need a collectives library; GPUs and
  # TPUs bring their own and ignore this.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  logging.info('Process %d of %d joined %s: %d global devices, %d local.', process_id,
               num_processes, coordinator_address, jax.device_count(),
               jax.local_device_count())


def _identity(x):
  return x


def pad_rows(batch: Any, multiple: int, batch_axis: int = 0) -> tuple[Any, int]:
  """Pads every array of `batch` along `batch_axis` to a multiple of `multiple`.

  Padded rows are zeros, so their 'mask' is False and losses and scores
  ignore them. Returns (padded batch, number of real rows).
  """
  rows = jax.tree.leaves(batch)[0].shape[batch_axis]
  pad = -rows % multiple
  if pad == 0:
    return batch, rows

  def pad_one(x):
    widths = [(0, 0)] * x.ndim
    widths[batch_axis] = (0, pad)
    return np.pad(np.asarray(x), widths)

  return jax.tree.map(pad_one, batch), rows


class DataParallel:
  """Places arrays on devices and compiles functions for one parallel mode.

  Args:
    mode: one of `MODES`.
    num_devices: devices to use (0: all; 'single' always uses one). Under
      'pmap' these are this host's devices; under 'mesh', the first
      `num_devices` of every process's devices.
  """

  def __init__(self, mode: str = 'single', num_devices: int = 0):
    if mode not in MODES:
      raise ValueError(f'Unknown parallel mode {mode!r}; expected one of {MODES}.')
    self.mode = mode
    if mode == 'single':
      devices = jax.local_devices()[:1]
    elif mode == 'pmap':
      if jax.process_count() > 1:
        raise ValueError("The 'pmap' mode runs on one host; use 'mesh' for several.")
      devices = jax.local_devices()
    else:
      devices = jax.devices()
    if num_devices:
      if num_devices > len(devices):
        raise ValueError(f'{num_devices} devices asked for, {len(devices)} present '
                         '(on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N '
                         'fakes N).')
      devices = devices[:num_devices]
    self.devices = list(devices)
    self.mesh = jax.sharding.Mesh(np.array(self.devices), (AXIS,))
    self._local = [d for d in self.devices if d.process_index == jax.process_index()]

  def __repr__(self) -> str:
    return f'DataParallel({self.mode!r}, {self.num_shards} devices)'

  @property
  def num_shards(self) -> int:
    """Devices a batch is split over (1 for 'single')."""
    return len(self.devices)

  @property
  def sum_across(self) -> Callable[[Any], Any]:
    """Totals a per-shard value over all shards of a batch (see module docstring)."""
    if self.mode == 'pmap':
      return lambda x: jax.lax.psum(x, AXIS)
    return _identity

  def process_rows(self, num_rows: int) -> slice:
    """The rows of a global batch of `num_rows` (a multiple of `num_shards`)
    that this process feeds: all of them except in a multi-host mesh."""
    if num_rows % self.num_shards:
      raise ValueError(f'{num_rows} rows do not divide among {self.num_shards} shards; '
                       'pad them first (pad_rows).')
    if self.mode != 'mesh' or jax.process_count() == 1:
      return slice(0, num_rows)
    per_device = num_rows // self.num_shards
    first = self.devices.index(self._local[0])
    return slice(first * per_device, (first + len(self._local)) * per_device)

  def put_batch(self, batch: Any, batch_axis: int = 0) -> Any:
    """This process's rows of a global batch (host arrays) onto the devices.

    Under 'pmap' the rows are split into a leading device axis,
    [..., rows, ...] -> [devices, ..., rows / devices, ...].
    """
    if self.mode == 'single':
      return jax.device_put(batch, self.devices[0])
    if self.mode == 'pmap':
      def split(x):
        x = np.asarray(x)
        shape = x.shape[:batch_axis] + (self.num_shards, -1) + x.shape[batch_axis + 1:]
        return np.moveaxis(x.reshape(shape), batch_axis, 0)
      return jax.device_put(jax.tree.map(split, batch), self._pmap_sharding())

    spec = PartitionSpec(*([None] * batch_axis + [AXIS]))
    sharding = NamedSharding(self.mesh, spec)
    if jax.process_count() == 1:
      return jax.device_put(batch, sharding)

    def global_array(x):
      shape = list(x.shape)
      shape[batch_axis] = shape[batch_axis] * self.num_shards // len(self._local)
      return jax.make_array_from_process_local_data(sharding, x, tuple(shape))
    # An explicit placement, though JAX's transfer guard cannot tell.
    with jax.transfer_guard_host_to_device('allow'):
      return jax.tree.map(global_array, batch)

  def put_replicated(self, tree: Any) -> Any:
    """A host pytree copied to every device (pmap: with a leading device axis)."""
    if self.mode == 'single':
      return jax.device_put(tree, self.devices[0])
    if self.mode == 'pmap':
      sharding = self._pmap_sharding()

      def replicate(x):
        x = np.asarray(x)[None]
        shards = [jax.device_put(x, d) for d in self.devices]
        return jax.make_array_from_single_device_arrays(
            (self.num_shards,) + x.shape[1:], sharding, shards)
      return jax.tree.map(replicate, tree)
    sharding = NamedSharding(self.mesh, PartitionSpec())
    if jax.process_count() == 1:
      return jax.device_put(tree, sharding)
    with jax.transfer_guard_host_to_device('allow'):
      return jax.tree.map(
          lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)

  def get_replicated(self, tree: Any) -> Any:
    """The host value of a replicated pytree (one copy)."""
    def one_copy(x):
      shard = jax.device_get(x.addressable_shards[0].data)
      return shard[0] if self.mode == 'pmap' else shard
    return jax.tree.map(one_copy, tree)

  def gather_rows(self, array: jax.Array, batch_axis: int = 0) -> np.ndarray:
    """Every row of a row-sharded output, in order, on the host (all processes)."""
    if self.mode == 'pmap':
      x = np.moveaxis(np.asarray(jax.device_get(array)), 0, batch_axis)
      shape = x.shape[:batch_axis] + (-1,) + x.shape[batch_axis + 2:]
      return x.reshape(shape)
    if self.mode == 'mesh' and jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(jax.device_get(array))

  def compile(self, fn: Callable, *example_args, donate_argnums: Sequence[int] = ()):
    """`fn` compiled for arguments placed like `example_args` (ahead of time).

    The returned executable takes arguments of exactly those shapes and
    placements and never retraces. Under 'pmap', `fn` runs once per device
    on its shard and may call `sum_across`.
    """
    if self.mode == 'pmap':
      mapped = jax.pmap(fn, axis_name=AXIS, devices=self.devices,
                        donate_argnums=tuple(donate_argnums))
    else:
      mapped = jax.jit(fn, donate_argnums=tuple(donate_argnums))
    return mapped.lower(*example_args).compile()

  def _pmap_sharding(self) -> NamedSharding:
    return NamedSharding(self.mesh, PartitionSpec(AXIS))
