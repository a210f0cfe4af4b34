"""Honest timing of compiled JAX functions: latency, throughput, FLOPs, memory.

Every measurement here follows the same rules:
  * compilation is done ahead of time (`jit(...).lower(...).compile()`) and
    timed on its own, so no timed call ever traces or compiles;
  * every timed call ends in `jax.block_until_ready`, so asynchronous dispatch
    cannot make a call look faster than the device work it started;
  * a few untimed warm-up calls come first (allocator, caches, thread pools);
  * latency is reported per call as p50 / p99, and throughput from the median
    call, which a busy shared machine disturbs less than the mean.

FLOPs come from XLA's cost analysis of the compiled executable. XLA counts the
body of a loop (`lax.scan`, `while`) once, not once per iteration, so for
recurrent models it undercounts by about the number of time steps.
`jaxpr_flops` counts from the traced program instead, multiplying each scan
body by its length; the benchmarks report both and compute utilisation from
the jaxpr count (on loop-free programs the two agree, see the tests).

Utilisation is achieved FLOP/s divided by the peak FLOP/s of a large matmul
measured by `matmul_peak_flops` on the same devices in the same process.
"""

import dataclasses
import resource
import sys
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class Timing:
  """The timings of one compiled function at one input shape.

  Attributes:
    latencies_s: seconds of each timed call, [repeats].
    compile_s: seconds spent lowering and compiling (0 when not compiled here).
    flops: floating-point operations of one call, or None when unknown.
    items_per_call: sequences (or events, or rows) one call processes.
    memory: peak memory figures, see `memory_stats`.
  """

  latencies_s: np.ndarray
  compile_s: float = 0.0
  flops: float | None = None
  items_per_call: int = 1
  memory: dict = dataclasses.field(default_factory=dict)

  @property
  def p50_s(self) -> float:
    return float(np.percentile(self.latencies_s, 50))

  @property
  def p99_s(self) -> float:
    return float(np.percentile(self.latencies_s, 99))

  @property
  def items_per_s(self) -> float:
    """Throughput of the median call."""
    return self.items_per_call / self.p50_s

  @property
  def flops_per_s(self) -> float | None:
    return None if self.flops is None else self.flops / self.p50_s

  def utilisation(self, peak_flops_per_s: float | None) -> float | None:
    """Achieved FLOP/s as a share of `peak_flops_per_s` (None if either is unknown)."""
    if self.flops is None or not peak_flops_per_s:
      return None
    return self.flops_per_s / peak_flops_per_s

  def row(self, prefix: str, peak_flops_per_s: float | None = None) -> dict:
    """The timings as flat result-row fields, each name starting with `prefix`."""
    row = {
        f'{prefix}_per_s': self.items_per_s,
        f'{prefix}_p50_ms': 1e3 * self.p50_s,
        f'{prefix}_p99_ms': 1e3 * self.p99_s,
        f'{prefix}_compile_s': self.compile_s,
        f'{prefix}_repeats': len(self.latencies_s),
        f'{prefix}_flops': self.flops,
        f'{prefix}_gflops_per_s': (None if self.flops is None
                                   else self.flops_per_s / 1e9),
        f'{prefix}_utilisation': self.utilisation(peak_flops_per_s),
    }
    row.update({f'{prefix}_{key}': value for key, value in self.memory.items()})
    return row


def xla_flops(compiled: Any) -> float | None:
  """FLOPs of one call of a compiled executable from XLA's cost analysis.

  Loop bodies are counted once (see the module docstring). None when the
  backend offers no cost analysis.
  """
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # Backends without cost analysis raise various errors.
    return None
  if isinstance(analysis, (list, tuple)):  # Older JAX: one dict per device program.
    analysis = analysis[0] if analysis else None
  if not analysis or 'flops' not in analysis:
    return None
  return float(analysis['flops'])


# Elementwise primitives counted as one FLOP per output element (as XLA does).
_ELEMENTWISE = frozenset({
    'add', 'sub', 'mul', 'div', 'neg', 'max', 'min', 'abs', 'sign', 'exp', 'exp2',
    'log', 'log1p', 'expm1', 'tanh', 'logistic', 'sqrt', 'rsqrt', 'pow',
    'integer_pow', 'sin', 'cos', 'erf', 'erf_inv', 'square', 'select_n', 'atan2',
    'add_any', 'rem', 'floor', 'ceil', 'round', 'clamp'})
_REDUCTIONS = frozenset({'reduce_sum', 'reduce_max', 'reduce_min', 'argmax', 'argmin',
                         'cumsum', 'cumlogsumexp', 'cummax', 'reduce_prod'})


def _size(aval) -> int:
  return int(np.prod(aval.shape)) if hasattr(aval, 'shape') else 1


def _sub_jaxprs(params: dict):
  """The jaxprs nested in an equation's parameters (scan/cond/pjit bodies...)."""
  for value in params.values():
    for item in (value if isinstance(value, (tuple, list)) else (value,)):
      if hasattr(item, 'eqns'):
        yield item
      elif hasattr(item, 'jaxpr') and hasattr(item.jaxpr, 'eqns'):
        yield item.jaxpr


def _count(jaxpr) -> float:
  flops = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == 'dot_general':
      (contract, _), _ = eqn.params['dimension_numbers']
      lhs_shape = eqn.invars[0].aval.shape
      depth = int(np.prod([lhs_shape[d] for d in contract])) if contract else 1
      flops += 2.0 * _size(eqn.outvars[0].aval) * depth
    elif name in _ELEMENTWISE:
      flops += sum(_size(v.aval) for v in eqn.outvars)
    elif name in _REDUCTIONS:
      flops += _size(eqn.invars[0].aval)
    elif name == 'scan':
      flops += eqn.params['length'] * _count(eqn.params['jaxpr'].jaxpr)
    elif name == 'cond':
      flops += max(_count(branch.jaxpr) for branch in eqn.params['branches'])
    else:  # pjit, custom_jvp/vjp calls, remat, while (counted once: unknown trips).
      flops += sum(_count(sub) for sub in _sub_jaxprs(eqn.params))
  return flops


def jaxpr_flops(fn: Callable, *args) -> float:
  """FLOPs of one call of `fn(*args)`, counted from its traced program.

  Matmuls count 2*M*N*K, elementwise ops one per output element, reductions
  one per input element; a `scan` body counts once per iteration. A `while`
  loop's body counts once (its trip count is not known when tracing).
  """
  return _count(jax.make_jaxpr(fn)(*args).jaxpr)


def compiled_memory_bytes(compiled: Any) -> int | None:
  """Bytes one call needs on the device: arguments + outputs + temporaries - aliased."""
  try:
    stats = compiled.memory_analysis()
  except Exception:  # Not every backend implements it.
    return None
  if stats is None:
    return None
  return int(stats.argument_size_in_bytes + stats.output_size_in_bytes +
             stats.temp_size_in_bytes - stats.alias_size_in_bytes)


def process_peak_rss_bytes() -> int:
  """The process's peak resident set size so far (bytes)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return int(peak if sys.platform == 'darwin' else peak * 1024)  # Linux: KiB.


def memory_stats(compiled: Any = None) -> dict:
  """Peak memory figures: the device's own counters where it has them.

  Returns:
    'peak_bytes': the device allocator's peak (GPU/TPU), or else the
      process's peak RSS (CPU, where the device is host memory);
    'peak_source': 'device' or 'process_rss';
    'step_bytes': what XLA plans for one call of `compiled`, when given.
  """
  stats = None
  try:
    stats = jax.local_devices()[0].memory_stats()
  except Exception:  # CPU clients may not implement it.
    stats = None
  if stats and 'peak_bytes_in_use' in stats:
    memory = {'peak_bytes': int(stats['peak_bytes_in_use']), 'peak_source': 'device'}
  else:
    memory = {'peak_bytes': process_peak_rss_bytes(), 'peak_source': 'process_rss'}
  if compiled is not None:
    memory['step_bytes'] = compiled_memory_bytes(compiled)
  return memory


def compile_function(fn: Callable, *args, **jit_kwargs) -> tuple[Any, float]:
  """Lowers and compiles `jax.jit(fn, **jit_kwargs)` for `args`; returns (compiled, s)."""
  start = time.perf_counter()
  compiled = jax.jit(fn, **jit_kwargs).lower(*args).compile()
  return compiled, time.perf_counter() - start


def time_calls(call: Callable[[], Any], repeats: int, warmup: int = 2) -> np.ndarray:
  """Seconds of each of `repeats` calls of `call()`, each waited for to the end.

  `call` takes no arguments and returns the arrays to wait for; a stateful
  step (one that donates its state) threads the state itself, e.g. through a
  closure. The `warmup` calls before are not timed.
  """
  if repeats < 1:
    raise ValueError(f'repeats must be at least 1, got {repeats}.')
  for _ in range(warmup):
    jax.block_until_ready(call())
  latencies = np.empty(repeats)
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(call())
    latencies[i] = time.perf_counter() - start
  return latencies


def interleaved_latencies(calls: dict[str, Callable[[], Any]], rounds: int,
                          repeats: int, warmup: int = 2,
                          settle: int = 1) -> dict[str, np.ndarray]:
  """Times several calls taking turns: `rounds` x (`repeats` calls of each, in order).

  On a machine whose load changes over time, alternating the contenders in
  short rounds exposes them to the same conditions, so their ratio is fairer
  than from back-to-back runs. Each turn starts with `settle` untimed calls,
  so that no contender pays for the one before it winding down (thread pools
  that spin before sleeping, caches). Returns name -> [rounds * repeats] s.
  """
  for call in calls.values():
    for _ in range(warmup):
      jax.block_until_ready(call())
  latencies = {name: [] for name in calls}
  for _ in range(rounds):
    for name, call in calls.items():
      latencies[name].append(time_calls(call, repeats, warmup=settle))
  return {name: np.concatenate(parts) for name, parts in latencies.items()}


def time_function(fn: Callable, args: Sequence[Any], *, repeats: int, warmup: int = 2,
                  items_per_call: int = 1, flops: float | None = None,
                  **jit_kwargs) -> Timing:
  """Compiles `fn` for `args`, then times `repeats` calls of it on the same `args`.

  For a pure function (no donated arguments). `flops` overrides XLA's count
  (pass an analytic count for loops).
  """
  compiled, compile_s = compile_function(fn, *args, **jit_kwargs)
  latencies = time_calls(lambda: compiled(*args), repeats, warmup)
  return Timing(latencies, compile_s, flops if flops is not None else xla_flops(compiled),
                items_per_call, memory_stats(compiled))


class Stepper:
  """Times a step `state, batch -> (state, aux)` that donates its state.

  The state returned by each call feeds the next one, so donation works as in
  training. Batches are taken in turn from `batches` (already on the device,
  so no host transfer falls inside a timed call).
  """

  def __init__(self, step_fn: Callable, state: Any, batches: Sequence[Any],
               donate: bool = True):
    self.batches = list(batches)
    if not self.batches:
      raise ValueError('Stepper needs at least one batch.')
    jit_kwargs = {'donate_argnums': 0} if donate else {}
    self.compiled, self.compile_s = compile_function(
        step_fn, state, self.batches[0], **jit_kwargs)
    self.state = state
    self._calls = 0

  def _call(self):
    batch = self.batches[self._calls % len(self.batches)]
    self._calls += 1
    self.state, aux = self.compiled(self.state, batch)
    return self.state, aux

  def time(self, repeats: int, warmup: int = 2, items_per_call: int = 1,
           flops: float | None = None) -> Timing:
    latencies = time_calls(self._call, repeats, warmup)
    return Timing(latencies, self.compile_s,
                  flops if flops is not None else xla_flops(self.compiled),
                  items_per_call, memory_stats(self.compiled))


def default_matmul_size() -> int:
  """Side of the peak matmul: big enough to saturate the default device."""
  return 2048 if jax.default_backend() == 'cpu' else 8192


def matmul_peak_flops(size: int | None = None, dtype=jnp.float32,
                      repeats: int = 5) -> dict:
  """The FLOP/s of a large square matmul on the default device: the peak to beat.

  Args:
    size: matrix side; by default 2048 on CPU and 8192 on accelerators.
    dtype: the models' compute dtype.
    repeats: timed calls; their median is kept, the statistic the models get too.

  Returns:
    {'peak_flops_per_s', 'peak_matmul_size', 'peak_dtype'}.
  """
  size = size or default_matmul_size()
  keys = jax.random.split(jax.random.key(0))
  a = jax.random.normal(keys[0], (size, size), dtype)
  b = jax.random.normal(keys[1], (size, size), dtype)
  compiled, _ = compile_function(jnp.matmul, a, b)
  latencies = time_calls(lambda: compiled(a, b), repeats, warmup=1)
  return {'peak_flops_per_s': 2.0 * size**3 / float(np.median(latencies)),
          'peak_matmul_size': size, 'peak_dtype': jnp.dtype(dtype).name}
