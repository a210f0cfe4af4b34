r"""Training and scoring throughput of the neural detectors, with PyTorch peers.

  python -m benchmarks.throughput                      # default sizes, vs PyTorch
  python -m benchmarks.throughput --sweep=length       # window length 64..4096
  python -m benchmarks.throughput --sweep=batch        # batch size
  python -m benchmarks.throughput --sweep=width        # model width

Every encoder runs the next-event objective on windows of random tokens
(throughput does not depend on their content) at the default model size of
configs/default.py, unless a sweep changes one dimension. Each row has, for
training and for scoring: sequences/s (of the median call), per-batch latency
p50 / p99, compile time (apart), FLOPs per call (XLA's cost analysis and a
count from the traced program, which sees every scan iteration), achieved
GFLOP/s and utilisation against a large matmul timed in the same rounds, the
memory XLA plans per call and the process / device peak, and the environment.

All contenders of one shape (JAX encoders, the PyTorch LSTM and Transformer
when `torch` is installed, and the peak matmul) are timed in alternating
rounds in one process, so load from other processes hits them alike; JAX rows
carry `*_vs_torch` ratios. `--streaming` adds the one-event-at-a-time scorer
of `seqad.streaming` (events/s and per-event latency) for recurrent and SSM
detectors. Rows go to <workdir>/<sweep>.jsonl and a table to <sweep>.md.
"""

import dataclasses
import os
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from configs import default
from seqad import batching
from seqad import environment
from seqad import harness
from seqad import io
from seqad import streaming
from seqad import training
from seqad.models import encoders
from seqad.models import objectives

SWEEPS = ('default', 'length', 'batch', 'width')

_SWEEP = flags.DEFINE_enum('sweep', 'default', SWEEPS, 'Which dimension to vary.')
_ENCODERS = flags.DEFINE_list('encoders', list(encoders.ENCODERS), 'Encoders to time.')
_LENGTHS = flags.DEFINE_list('lengths', ['64', '256', '1024', '4096'],
                             'Window lengths of the length sweep.')
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['16', '64', '256'],
                                 'Training batch sizes of the batch sweep.')
_WIDTHS = flags.DEFINE_list('widths', ['32', '64', '128', '256'],
                            'Encoder widths of the width sweep.')
_TOKENS_PER_BATCH = flags.DEFINE_integer(
    'tokens_per_batch', 4096, 'Length sweep: training batch = this // length windows.')
_TORCH = flags.DEFINE_enum('torch', 'auto', ['auto', 'yes', 'no'],
                           'Time the PyTorch peers (auto: when torch is installed).')
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'Alternating rounds per shape.')
_REPEATS = flags.DEFINE_integer('repeats', 6, 'Timed calls per contender per round.')
_SECONDS = flags.DEFINE_float(
    'seconds_per_shape', 40.0, 'Fewer rounds for shapes whose calls take longer.')
_STREAMING = flags.DEFINE_bool('streaming', True,
                               'Time the streaming scorer (default sweep only).')
_STREAMS = flags.DEFINE_list('streams', ['1', '256'],
                             'Streaming: streams advanced per call.')
_WORKDIR = flags.DEFINE_string('workdir', 'results/throughput', 'Output folder.')

VOCAB_SIZES = batching.DEFAULT_VOCAB_SIZES
random_windows = batching.random_windows
# Encoders with a PyTorch peer in benchmarks.torch_reference.
TORCH_ENCODERS = ('lstm', 'transformer')


@dataclasses.dataclass
class Shape:
  """One measured configuration: window length, batch sizes and encoder width."""
  length: int = 64
  train_batch: int = 64
  score_batch: int = 256
  hidden: int = 64

  def neural_config(self) -> ml_collections.ConfigDict:
    config = default.get_config().neural
    config.encoder.hidden = self.hidden
    config.batch_size = self.train_batch
    config.score_batch_size = self.score_batch
    return config

  def fields(self) -> dict:
    return {'window_length': self.length, 'train_batch_size': self.train_batch,
            'score_batch_size': self.score_batch, 'hidden': self.hidden}


@dataclasses.dataclass
class Workload:
  """A training step and a scoring call of one model, ready to time.

  `train` and `score` take no arguments and return what to wait for.
  """
  detector: str
  framework: str
  train: Callable[[], Any]
  score: Callable[[], Any]
  info: dict  # Compile times, FLOP counts, parameters, planned memory.


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The training engine's optimizer (`seqad.training.make_optimizer`) for `config`."""
  return training.make_optimizer(config.learning_rate, config.weight_decay,
                                 config.clip_norm, config.warmup_steps, config.num_steps)


def train_step(loss_fn: Callable, optimizer: optax.GradientTransformation, seed: int):
  """(params, opt_state, step), batch -> (same, loss): one optimizer step.

  The math of a `seqad.training` step (gradient of the mean loss, clipping,
  AdamW) without the engine's bookkeeping, so the benchmark times the model.
  """
  base_key = jax.random.key(seed)

  def step_fn(state, batch):
    params, opt_state, step = state
    rng = jax.random.fold_in(base_key, step)
    loss, grads = jax.value_and_grad(loss_fn)(params, batch, rng)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state, step + 1), loss

  return step_fn


def jax_workload(encoder: str, shape: Shape, seed: int = 0) -> Workload:
  """The jitted training step and window scorer of '<encoder>-next' at `shape`."""
  config = shape.neural_config()
  model = objectives.Objective(
      'next', VOCAB_SIZES, encoders.make_encoder(encoder, config.encoder, causal=True),
      config)
  windows = random_windows(2 * max(shape.train_batch, shape.score_batch), shape.length)
  # Two training batches taken in turn; all inputs on the device before timing.
  train_batches = [jax.device_put(batching.gather(
      windows, np.arange(i * shape.train_batch, (i + 1) * shape.train_batch)))
                   for i in range(2)]
  score_batch = jax.device_put(batching.gather(windows, np.arange(shape.score_batch)))

  params = jax.jit(model.init)(jax.random.key(seed), train_batches[0])
  optimizer = make_optimizer(config)
  state = (params, optimizer.init(params), jnp.zeros((), jnp.int32))
  step = train_step(model.loss, optimizer, seed)
  train_flops = harness.jaxpr_flops(step, state, train_batches[0])
  stepper = harness.Stepper(step, state, train_batches)

  def window_scores(params, batch):
    scores = model.event_scores(params, batch)
    return objectives.aggregate(scores, batch['mask'], config.aggregation,
                                config.aggregation_k)

  scorer, score_compile_s = harness.compile_function(window_scores, params, score_batch)
  info = {
      'num_params': int(sum(x.size for x in jax.tree.leaves(params))),
      'train_compile_s': stepper.compile_s, 'score_compile_s': score_compile_s,
      'train_flops': train_flops,
      'train_xla_flops': harness.xla_flops(stepper.compiled),
      'train_step_bytes': harness.compiled_memory_bytes(stepper.compiled),
      'score_flops': harness.jaxpr_flops(window_scores, params, score_batch),
      'score_xla_flops': harness.xla_flops(scorer),
      'score_step_bytes': harness.compiled_memory_bytes(scorer),
  }
  return Workload(f'{encoder}-next', 'jax', stepper._call,
                  lambda: scorer(stepper.state[0], score_batch), info)


def torch_workload(encoder: str, shape: Shape, seed: int = 0) -> Workload:
  """The PyTorch peer of '<encoder>-next' at `shape` (eager mode)."""
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  config = shape.neural_config()
  windows = random_windows(2 * max(shape.train_batch, shape.score_batch), shape.length)
  workload = torch_reference.Workload(
      encoder, VOCAB_SIZES, config,
      batching.gather(windows, np.arange(shape.train_batch)),
      batching.gather(windows, np.arange(shape.score_batch)), seed)
  info = {'num_params': workload.num_params, **torch_reference.describe()}
  return Workload(f'{encoder}-next', 'torch', workload.train_step, workload.score, info)


def torch_available(mode: str) -> bool:
  """Whether to time the PyTorch peers: mode 'yes', 'no' or 'auto' (if installed)."""
  if mode == 'no':
    return False
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    if mode == 'yes':
      raise
    logging.warning('torch is not installed: no PyTorch peers (pip install -e .[torch]).')
    return False
  return True


def _rounds_within(calls: dict[str, Callable[[], Any]], rounds: int, repeats: int,
                   seconds: float) -> int:
  """At most `rounds`, fewer where one round of every call would exceed the budget."""
  one_each = sum(harness.time_calls(call, 1, warmup=1)[0] for call in calls.values())
  return int(max(1, min(rounds, seconds // max(one_each * (repeats + 1), 1e-9))))


def measure_shape(shape: Shape, encoder_names: list[str], with_torch: bool,
                  rounds: int, repeats: int, seconds: float = 40.0) -> list[dict]:
  """Times every workload of one shape in alternating rounds; one row per workload."""
  workloads = [jax_workload(name, shape) for name in encoder_names]
  if with_torch:
    workloads += [torch_workload(name, shape) for name in encoder_names
                  if name in TORCH_ENCODERS]

  size = harness.default_matmul_size()
  a = jnp.ones((size, size), jnp.float32)
  matmul, _ = harness.compile_function(jnp.matmul, a, a)
  calls = {'peak': lambda: matmul(a, a)}
  for w in workloads:
    calls[f'{w.framework}/{w.detector}/train'] = w.train
    calls[f'{w.framework}/{w.detector}/score'] = w.score

  load_before = os.getloadavg()[0]
  rounds = _rounds_within(calls, rounds, repeats, seconds)
  logging.info('Timing %d workloads at %s: %d rounds of %d calls (load %.2f).',
               len(workloads), shape, rounds, repeats, load_before)
  latencies = harness.interleaved_latencies(calls, rounds, repeats, warmup=1)
  load_after = os.getloadavg()[0]
  peak_flops = 2.0 * size**3 / float(np.median(latencies['peak']))

  rows = []
  memory = harness.memory_stats()
  for w in workloads:
    row = {'detector': w.detector, 'framework': w.framework, **shape.fields(),
           'peak_flops_per_s': peak_flops, 'peak_matmul_size': size,
           'rounds': rounds, 'repeats': repeats, 'load_before': load_before,
           'load_after': load_after, 'peak_memory_bytes': memory['peak_bytes'],
           'peak_memory_source': memory['peak_source']}
    for part, batch in (('train', shape.train_batch), ('score', shape.score_batch)):
      timing = harness.Timing(latencies[f'{w.framework}/{w.detector}/{part}'],
                              w.info.get(f'{part}_compile_s', 0.0),
                              w.info.get(f'{part}_flops'), batch)
      row.update(timing.row(part, peak_flops))
      row[f'{part}_seq_per_s'] = row.pop(f'{part}_per_s')
    row.update({k: v for k, v in w.info.items() if k not in row})
    rows.append(row)

  # JAX / PyTorch ratios, where a peer was timed.
  by_key = {(r['framework'], r['detector']): r for r in rows}
  for row in rows:
    peer = by_key.get(('torch', row['detector']))
    if row['framework'] == 'jax' and peer:
      for part in ('train', 'score'):
        row[f'{part}_vs_torch'] = row[f'{part}_seq_per_s'] / peer[f'{part}_seq_per_s']
  return rows


def measure_streaming(encoder_names: list[str], shape: Shape, streams: list[int],
                      rounds: int, repeats: int, history: int = 2000,
                      seed: int = 0) -> list[dict]:
  """Events/s and per-event latency of `seqad.streaming` at `shape`'s model size.

  For each streamable encoder and stream count, one event per stream per call,
  timed in alternating rounds against rescoring a window of `shape.length`
  events per stream (what a window scorer pays for each new event). A single
  stream is then fed `history` events in a row, and the per-event latency of
  the first and last 10% compared: equal when the cost does not grow.
  """
  rows = []
  config = shape.neural_config()
  for name in [n for n in encoder_names if n in streaming.STREAMABLE_ENCODERS]:
    model = objectives.Objective(
        'next', VOCAB_SIZES, encoders.make_encoder(name, config.encoder, causal=True),
        config)
    windows = random_windows(max(streams), shape.length, seed)
    params = jax.jit(model.init)(jax.random.key(seed),
                                 batching.gather(windows, np.arange(1)))
    for count in streams:
      scorer = streaming.StreamingScorer(model, count, config.aggregation,
                                         config.aggregation_k)
      batch = jax.device_put(batching.gather(windows, np.arange(count)))
      # Each call feeds the next event of every stream's window, cycling.
      events = [jax.device_put({f: v[:, t] for f, v in batch['tokens'].items()})
                for t in range(shape.length)]
      state = {'state': scorer.initial_state(params), 'calls': 0}
      start = time.perf_counter()
      jax.block_until_ready(scorer.step(params, scorer.initial_state(params), events[0]))
      compile_s = time.perf_counter() - start

      def stream_call(state=state, scorer=scorer, events=events):
        event = events[state['calls'] % len(events)]
        state['calls'] += 1
        state['state'], _, window_scores = scorer.step(params, state['state'], event)
        return window_scores

      def window_scores(params, batch):
        return objectives.aggregate(model.event_scores(params, batch), batch['mask'],
                                    config.aggregation, config.aggregation_k)

      rescore, _ = harness.compile_function(window_scores, params, batch)
      load_before = os.getloadavg()[0]
      latencies = harness.interleaved_latencies(
          {'stream': stream_call, 'rescore': lambda: rescore(params, batch)},
          rounds, repeats * 10, warmup=2)
      row = {'detector': f'{name}-next', 'framework': 'jax', 'streams': count,
             'window_length': shape.length, 'hidden': shape.hidden,
             'step_compile_s': compile_s, 'load_before': load_before,
             'load_after': os.getloadavg()[0],
             'compiled_steps': scorer.compiled_steps()}
      stream_timing = harness.Timing(latencies['stream'], items_per_call=count)
      rescore_timing = harness.Timing(latencies['rescore'], items_per_call=count)
      row.update({'events_per_s': stream_timing.items_per_s,
                  'event_p50_ms': 1e3 * stream_timing.p50_s,
                  'event_p99_ms': 1e3 * stream_timing.p99_s,
                  'rescore_p50_ms': 1e3 * rescore_timing.p50_s,
                  'rescore_events_per_s': rescore_timing.items_per_s})

      if count == min(streams):
        # One long history: per-event latency early vs late.
        state['state'], state['calls'] = scorer.initial_state(params), 0
        long_run = harness.time_calls(stream_call, history, warmup=0)
        tenth = max(history // 10, 1)
        row.update({'history_events': history,
                    'event_p50_ms_first': 1e3 * float(np.median(long_run[:tenth])),
                    'event_p50_ms_last': 1e3 * float(np.median(long_run[-tenth:]))})
      rows.append(row)
  return rows


def sweep_shapes(sweep: str, lengths=(64, 256, 1024, 4096), batch_sizes=(16, 64, 256),
                 widths=(32, 64, 128, 256), tokens_per_batch: int = 4096) -> list[Shape]:
  """The shapes of one sweep; every other dimension stays at its default."""
  if sweep == 'default':
    return [Shape()]
  if sweep == 'length':
    shapes = []
    for length in lengths:
      batch = max(tokens_per_batch // length, 1)
      shapes.append(Shape(length=length, train_batch=batch, score_batch=4 * batch))
    return shapes
  if sweep == 'batch':
    return [Shape(train_batch=b, score_batch=4 * b) for b in batch_sizes]
  if sweep == 'width':
    return [Shape(hidden=w) for w in widths]
  raise ValueError(f'Unknown sweep {sweep!r}; expected one of {SWEEPS}.')


def _number(value, spec: str) -> str:
  return '-' if value is None else format(value, spec)


def markdown(rows: list[dict]) -> str:
  """The rows as a Markdown table, ratios, utilisation and load included."""
  lines = [
      '| detector | framework | length | batch train/score | width | train seq/s | '
      'score seq/s | train p50/p99 ms | score p50/p99 ms | compile s train/score | '
      'train GFLOP/s | util train | util score | train vs torch | score vs torch | '
      'load |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(
        f"| {r['detector']} | {r['framework']} | {r['window_length']} | "
        f"{r['train_batch_size']}/{r['score_batch_size']} | {r['hidden']} | "
        f"{r['train_seq_per_s']:.1f} | {r['score_seq_per_s']:.1f} | "
        f"{r['train_p50_ms']:.1f}/{r['train_p99_ms']:.1f} | "
        f"{r['score_p50_ms']:.1f}/{r['score_p99_ms']:.1f} | "
        f"{_number(r.get('train_compile_s'), '.1f')}/"
        f"{_number(r.get('score_compile_s'), '.1f')} | "
        f"{_number(r.get('train_gflops_per_s'), '.1f')} | "
        f"{_number(r.get('train_utilisation'), '.1%')} | "
        f"{_number(r.get('score_utilisation'), '.1%')} | "
        f"{_number(r.get('train_vs_torch'), '.2f')} | "
        f"{_number(r.get('score_vs_torch'), '.2f')} | "
        f"{r['load_before']:.2f}→{r['load_after']:.2f} |")
  if not rows:
    return '\n'.join(lines) + '\n'
  peak = rows[0]['peak_flops_per_s'] / 1e9
  return '\n'.join(lines) + (
      f'\n\nPeak: a {rows[0]["peak_matmul_size"]}-square float32 matmul at {peak:.0f} '
      'GFLOP/s, timed in the same rounds. Load: 1-minute load average before→after '
      f'the shape, on {os.cpu_count()} CPUs.\n')


def streaming_markdown(rows: list[dict]) -> str:
  lines = ['| detector | streams | events/s | per-event p50/p99 ms | '
           'rescoring the window, p50 ms | per-event p50 ms, first/last 10% of '
           'history | load |', '|---|---|---|---|---|---|---|']
  for r in rows:
    history = '-'
    if 'history_events' in r:
      history = (f"{r['event_p50_ms_first']:.3f}/{r['event_p50_ms_last']:.3f} "
                 f"({r['history_events']} events)")
    lines.append(
        f"| {r['detector']} | {r['streams']} | {r['events_per_s']:.0f} | "
        f"{r['event_p50_ms']:.3f}/{r['event_p99_ms']:.3f} | {r['rescore_p50_ms']:.2f} | "
        f"{history} | {r['load_before']:.2f}→{r['load_after']:.2f} |")
  return '\n'.join(lines) + '\n'


def run(sweep: str, workdir: str, encoder_names: list[str], *, torch_mode: str = 'auto',
        rounds: int = 5, repeats: int = 6, seconds_per_shape: float = 40.0,
        streams: list[int] | None = None, shapes: list[Shape] | None = None) -> list[dict]:
  """Measures every shape of `sweep`; writes <workdir>/<sweep>.jsonl and .md.

  `streams` (default sweep only) adds the streaming scorer's rows to
  <workdir>/streaming.jsonl and .md. `shapes` replaces the sweep's shapes.
  """
  env = environment.describe()
  with_torch = torch_available(torch_mode)
  rows = []
  for shape in shapes or sweep_shapes(sweep):
    for row in measure_shape(shape, encoder_names, with_torch, rounds, repeats,
                             seconds_per_shape):
      rows.append({'sweep': sweep, **row, **env})
    # Written after every shape, so an interrupted sweep keeps what it measured.
    io.write_jsonl_atomic(os.path.join(workdir, f'{sweep}.jsonl'), rows)
  table = markdown(rows)
  io.write_text_atomic(os.path.join(workdir, f'{sweep}.md'), table)
  print(table)

  if sweep == 'default' and streams:
    shape = (shapes or [Shape()])[0]
    streaming_rows = [{'sweep': 'streaming', **row, **env} for row in measure_streaming(
        encoder_names, shape, streams, rounds, repeats)]
    if streaming_rows:
      io.write_jsonl_atomic(os.path.join(workdir, 'streaming.jsonl'), streaming_rows)
      streaming_table = streaming_markdown(streaming_rows)
      io.write_text_atomic(os.path.join(workdir, 'streaming.md'), streaming_table)
      print(streaming_table)
  return rows


def main(argv):
  del argv
  shapes = sweep_shapes(_SWEEP.value, tuple(map(int, _LENGTHS.value)),
                        tuple(map(int, _BATCH_SIZES.value)),
                        tuple(map(int, _WIDTHS.value)), _TOKENS_PER_BATCH.value)
  run(_SWEEP.value, _WORKDIR.value, _ENCODERS.value, torch_mode=_TORCH.value,
      rounds=_ROUNDS.value, repeats=_REPEATS.value, seconds_per_shape=_SECONDS.value,
      streams=list(map(int, _STREAMS.value)) if _STREAMING.value else None,
      shapes=shapes)


if __name__ == '__main__':
  app.run(main)
