r"""Training and scoring throughput of each encoder at several window lengths.

  python -m benchmarks.throughput --lengths=64,1024 --workdir=results/throughput

Windows are random tokens of the default vocabulary (throughput does not depend
on their content), every encoder with the next-event objective, at the default
model size. Compilation is timed apart: each shape is compiled ahead of time,
and the timed region runs compiled steps up to a `block_until_ready`.
"""

import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from configs import default
from seqad import environment
from seqad import io
from seqad.data import windows as windows_lib
from seqad.detectors import neural
from seqad.models import encoders

_ENCODERS = flags.DEFINE_list('encoders', list(encoders.ENCODERS), 'Encoders to time.')
_OBJECTIVE = flags.DEFINE_string('objective', 'next', 'Objective of every detector.')
_LENGTHS = flags.DEFINE_list('lengths', ['64', '1024'], 'Window lengths.')
_TOKENS_PER_BATCH = flags.DEFINE_integer(
    'tokens_per_batch', 4096, 'Training batch = this // length windows (at least 1).')
_STEPS = flags.DEFINE_integer('steps', 6, 'Timed training steps per shape.')
_SCORE_WINDOWS = flags.DEFINE_integer('score_windows', 512,
                                      'Windows scored per shape (at least one batch).')
_WORKDIR = flags.DEFINE_string('workdir', 'results/throughput', 'Output folder.')

VOCAB_SIZES = {'event_type': 4, 'category': 129, 'gap': 16, 'hour': 24, 'item_relation': 5}


def random_windows(num_windows: int, length: int, seed: int = 0) -> windows_lib.Windows:
  """Full-length windows of uniformly random tokens."""
  rng = np.random.default_rng(seed)
  tokens = {field: rng.integers(0, size, (num_windows, length)).astype(np.int32)
            for field, size in VOCAB_SIZES.items()}
  return windows_lib.Windows(
      tokens=tokens, mask=np.ones((num_windows, length), bool),
      event_kind=np.zeros((num_windows, length), np.int8),
      kind=np.zeros(num_windows, np.int8), user_index=np.arange(num_windows, dtype=np.int32))


def measure(encoder: str, objective: str, length: int) -> dict:
  """Trains for a few steps and scores once; returns the row of timings."""
  config = default.get_config().neural
  config.batch_size = max(_TOKENS_PER_BATCH.value // length, 1)
  config.score_batch_size = config.batch_size
  config.num_steps = _STEPS.value + 1
  config.warmup_steps = 1
  config.log_every = 10**9
  windows = random_windows(max(config.batch_size * 4, _SCORE_WINDOWS.value), length)

  detector = neural.NeuralDetector(f'{encoder}-{objective}', VOCAB_SIZES, config, seed=0)
  detector.fit(windows)
  score_windows = windows.take(np.arange(_SCORE_WINDOWS.value))
  detector.decision_function(score_windows.take(np.arange(config.batch_size)))  # Compile.
  start = time.perf_counter()
  detector.decision_function(score_windows)
  score_s = time.perf_counter() - start
  return {
      'detector': detector.name, 'window_length': length,
      'batch_size': config.batch_size,
      'train_seq_per_s': detector.timings['train_seq_per_s'],
      'train_events_per_s': detector.timings['train_seq_per_s'] * length,
      'score_seq_per_s': len(score_windows) / score_s,
      'train_compile_s': detector.timings['train_compile_s'],
      'score_compile_s': detector.timings['score_compile_s'],
      'num_params': detector.timings['num_params'],
  }


def markdown(rows: list[dict]) -> str:
  lines = ['| detector | length | batch | train seq/s | score seq/s | train compile s |',
           '|---|---|---|---|---|---|']
  for row in rows:
    lines.append(f"| {row['detector']} | {row['window_length']} | {row['batch_size']} | "
                 f"{row['train_seq_per_s']:.1f} | {row['score_seq_per_s']:.1f} | "
                 f"{row['train_compile_s']:.1f} |")
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  env = environment.describe()
  rows = []
  for length in map(int, _LENGTHS.value):
    for encoder in _ENCODERS.value:
      logging.info('Timing %s-%s at length %d.', encoder, _OBJECTIVE.value, length)
      rows.append({**measure(encoder, _OBJECTIVE.value, length), **env})
      # Written after every shape, so an interrupted sweep keeps what it measured.
      io.write_jsonl_atomic(os.path.join(_WORKDIR.value, 'throughput.jsonl'), rows)
  table = markdown(rows)
  io.write_text_atomic(os.path.join(_WORKDIR.value, 'throughput.md'), table)
  print(table)


if __name__ == '__main__':
  app.run(main)
