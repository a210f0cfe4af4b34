r"""Data-parallel scaling: 1, 2, 4 and 8 devices, pmap vs sharded jit, K seeds.

  python -m benchmarks.scaling --workdir=results/scaling

On a CPU the devices are fake (XLA_FLAGS=--xla_force_host_platform_device_count,
set here to the largest count before JAX starts), so every "device" shares the
same cores: the run measures what partitioning a step costs (per-device
dispatch, the gradient all-reduce, smaller per-device matmuls), not a speed-up.
On an accelerator host the same command uses the real devices.

Rows, for the training step of `--detector` through `seqad.training.train`
(the engine itself: padding, donation, transfer guard, metrics read-back):
  strong  a fixed global batch split over 1..8 devices, both parallel paths;
  weak    a fixed batch per device (global batch grows with the devices);
  seeds   K seeds in one vmapped program vs the same K trained one by one.
Each row has training sequences/s (compilation excluded), per device, and the
ratio to the one-device row of the same sweep measured in the same run.
Writes <workdir>/scaling.jsonl and scaling.md.
"""

import os
import sys

_MAX_DEVICES = 8
if 'jax' not in sys.modules and 'xla_force_host_platform_device_count' not in \
    os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             f' --xla_force_host_platform_device_count={_MAX_DEVICES}')

# pylint: disable=wrong-import-position
import time

from absl import app
from absl import flags
from absl import logging
import jax

from configs import default
from seqad import batching
from seqad import environment
from seqad import io
from seqad import parallel
from seqad import training
from seqad.models import encoders
from seqad.models import objectives

_WORKDIR = flags.DEFINE_string('workdir', 'results/scaling', 'Output folder.')
_DETECTOR = flags.DEFINE_string('detector', 'lstm-next', '<encoder>-<objective> to train.')
_DEVICES = flags.DEFINE_list('devices', ['1', '2', '4', '8'], 'Device counts.')
_GLOBAL_BATCH = flags.DEFINE_integer('global_batch', 64, 'Strong scaling: windows/step.')
_PER_DEVICE = flags.DEFINE_integer('per_device_batch', 16, 'Weak scaling: per device.')
_SEEDS = flags.DEFINE_integer('seeds', 4, 'K of the K-seed rows.')
_STEPS = flags.DEFINE_integer('steps', 30, 'Training steps per row (the first untimed).')
_LENGTH = flags.DEFINE_integer('length', 64, 'Window length.')


def _model(name: str, config):
  encoder_name, objective_name = name.split('-')
  encoder = encoders.make_encoder(encoder_name, config.encoder,
                                  causal=objectives.CAUSAL[objective_name])
  return objectives.Objective(objective_name, batching.DEFAULT_VOCAB_SIZES, encoder, config)


def train_row(name: str, mode: str, devices: int, batch_size: int, seeds: list[int],
              windows) -> dict:
  """Trains `name` for --steps on `devices` devices; one timing row."""
  config = default.get_config().neural
  model = _model(name, config)
  example = {'tokens': {f: v[:2] for f, v in windows.tokens.items()},
             'mask': windows.mask[:2]}
  init = jax.jit(model.init)
  params = [init(jax.random.key(s), example) for s in seeds]
  optimizer = training.make_optimizer(config.learning_rate, config.weight_decay,
                                      config.clip_norm, config.warmup_steps, _STEPS.value)
  train_config = training.TrainConfig(num_steps=_STEPS.value, batch_size=batch_size,
                                      log_every=_STEPS.value)
  plan = parallel.DataParallel(mode, devices)
  start = time.perf_counter()
  _, stats = training.train(model.loss_terms, params, optimizer, windows, train_config,
                            seeds, plan=plan)
  return {'detector': name, 'mode': mode, 'devices': devices, 'batch_size': batch_size,
          'seeds': len(seeds), 'train_seq_per_s': stats['train_seq_per_s'],
          'train_seq_per_s_per_device': stats['train_seq_per_s'] / devices,
          'compile_s': stats['train_compile_s'], 'wall_s': time.perf_counter() - start,
          'window_length': windows.length}


def run(workdir: str) -> list[dict]:
  counts = [int(d) for d in _DEVICES.value]
  if max(counts) > jax.device_count():
    raise ValueError(f'{max(counts)} devices asked for, {jax.device_count()} present.')
  windows = batching.random_windows(
      max(_GLOBAL_BATCH.value, _PER_DEVICE.value * max(counts)) * 4, _LENGTH.value)
  name = _DETECTOR.value
  rows = []

  def add(sweep: str, row: dict, reference: dict | None) -> dict:
    row['sweep'] = sweep
    if reference:
      row['vs_reference'] = row['train_seq_per_s'] / reference['train_seq_per_s']
    logging.info('%s', row)
    rows.append(row)
    return row

  # Strong scaling: one global batch, split over more and more devices.
  reference = add('strong', train_row(name, 'single', 1, _GLOBAL_BATCH.value, [0],
                                      windows), None)
  for mode in ('pmap', 'mesh'):
    for count in counts:
      add('strong', train_row(name, mode, count, _GLOBAL_BATCH.value, [0], windows),
          reference)

  # Weak scaling: the same work per device.
  reference = add('weak', train_row(name, 'single', 1, _PER_DEVICE.value, [0], windows),
                  None)
  for mode in ('pmap', 'mesh'):
    for count in counts:
      add('weak', train_row(name, mode, count, _PER_DEVICE.value * count, [0], windows),
          reference)

  # K seeds in one vmapped program vs K separate runs (one device).
  seeds = list(range(_SEEDS.value))
  separate = [train_row(name, 'single', 1, _GLOBAL_BATCH.value, [s], windows)
              for s in seeds]
  one_by_one = {**separate[0], 'seeds': len(seeds),
                'train_seq_per_s': len(seeds) / sum(1 / r['train_seq_per_s']
                                                    for r in separate),
                'compile_s': sum(r['compile_s'] for r in separate),
                'wall_s': sum(r['wall_s'] for r in separate), 'mode': 'single x K'}
  one_by_one['train_seq_per_s_per_device'] = one_by_one['train_seq_per_s']
  reference = add('seeds', one_by_one, None)
  add('seeds', train_row(name, 'single', 1, _GLOBAL_BATCH.value, seeds, windows),
      reference)

  env = environment.describe()
  for row in rows:
    row.update(env)
  os.makedirs(workdir, exist_ok=True)
  io.write_jsonl_atomic(os.path.join(workdir, 'scaling.jsonl'), rows)
  table = markdown(rows)
  io.write_text_atomic(os.path.join(workdir, 'scaling.md'), table)
  print(table)
  return rows


def markdown(rows: list[dict]) -> str:
  lines = ['| sweep | mode | devices | seeds | global batch | train seq/s | per device | '
           'vs 1 device / K runs | compile s |', '|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    ratio = r.get('vs_reference')
    lines.append(
        f"| {r['sweep']} | {r['mode']} | {r['devices']} | {r['seeds']} | "
        f"{r['batch_size']} | {r['train_seq_per_s']:.0f} | "
        f"{r['train_seq_per_s_per_device']:.0f} | "
        f"{'-' if ratio is None else format(ratio, '.2f')} | {r['compile_s']:.1f} |")
  env = rows[0]
  lines.append('')
  lines.append(f"{env['detector']}, window length {env['window_length']}, "
               f"{env['backend']} backend, {env['device_count']} devices "
               f"({env['device_kind']}), {env['cpu_count']} CPUs, jax "
               f"{env['jax_version']}, commit {env['commit']}.")
  return '\n'.join(lines) + '\n'


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  run(_WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
