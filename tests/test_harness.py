"""The timing harness: compile time apart, known latencies, FLOP counts."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from seqad import harness

TRACE_SLEEP_S = 0.3
CALL_SLEEP_S = 0.05


def _sleepy(x):
  """Sleeps TRACE_SLEEP_S while being traced and CALL_SLEEP_S on every call."""
  time.sleep(TRACE_SLEEP_S)  # Python code in a jitted function runs at trace time only.

  def sleep_then_return(value):
    time.sleep(CALL_SLEEP_S)
    return value

  return jax.pure_callback(sleep_then_return, jax.ShapeDtypeStruct(x.shape, x.dtype), x) + 1


def test_compilation_is_timed_apart_and_calls_take_their_sleep():
  timing = harness.time_function(_sleepy, (jnp.ones(3),), repeats=5, warmup=1,
                                 items_per_call=10)
  assert timing.compile_s >= TRACE_SLEEP_S
  # Every timed call sleeps once and never retraces (that would add 0.3 s more).
  assert np.all(timing.latencies_s >= CALL_SLEEP_S)
  assert np.all(timing.latencies_s < CALL_SLEEP_S + 0.2)
  np.testing.assert_allclose(timing.items_per_s, 10 / timing.p50_s)
  row = timing.row('score')
  assert row['score_p50_ms'] >= 1e3 * CALL_SLEEP_S and row['score_repeats'] == 5


def test_asynchronous_work_is_waited_for():
  # Dispatch returns at once; the timed call must still include the callback.
  def slow(x):
    return jax.pure_callback(lambda v: (time.sleep(CALL_SLEEP_S), v)[1],
                             jax.ShapeDtypeStruct(x.shape, x.dtype), x)

  compiled, _ = harness.compile_function(slow, jnp.ones(2))
  latencies = harness.time_calls(lambda: compiled(jnp.ones(2)), repeats=3, warmup=0)
  assert np.all(latencies >= CALL_SLEEP_S)


def test_stepper_threads_donated_state():
  def step(state, batch):
    return state + batch, state.sum()

  stepper = harness.Stepper(step, jnp.zeros(4), [jnp.ones(4), 2 * jnp.ones(4)])
  timing = stepper.time(repeats=4, warmup=1, items_per_call=4)
  # Five calls alternate batches 1, 2, 1, 2, 1.
  np.testing.assert_allclose(stepper.state, np.full(4, 7.0))
  assert timing.compile_s > 0 and len(timing.latencies_s) == 4


def test_jaxpr_flops_counts_scan_iterations_and_matches_xla_without_loops():
  w = jnp.ones((32, 32))

  def recurrent(h):
    return jax.lax.scan(lambda c, _: (c @ w, None), h, None, length=7)[0]

  # 7 matmuls of [8, 32] x [32, 32].
  assert harness.jaxpr_flops(recurrent, jnp.ones((8, 32))) == 7 * 2 * 8 * 32 * 32

  def mlp(x):
    return jnp.tanh(x @ w) @ w

  x = jnp.ones((16, 32))
  compiled, _ = harness.compile_function(mlp, x)
  np.testing.assert_allclose(harness.jaxpr_flops(mlp, x), harness.xla_flops(compiled),
                             rtol=0.05)


def test_memory_stats_and_peak():
  compiled, _ = harness.compile_function(lambda a: a @ a, jnp.ones((64, 64)))
  memory = harness.memory_stats(compiled)
  assert memory['peak_bytes'] > 0
  assert memory['peak_source'] in ('device', 'process_rss')
  assert memory['step_bytes'] >= 2 * 64 * 64 * 4  # Argument and output.
  peak = harness.matmul_peak_flops(size=128, repeats=2)
  assert peak['peak_flops_per_s'] > 0 and peak['peak_matmul_size'] == 128


def test_interleaved_rounds_time_each_call_and_skip_the_settling_calls():
  counts = {'short': 0, 'long': 0}

  def sleeper(name, seconds):
    def call():
      counts[name] += 1
      time.sleep(seconds)
      return jnp.zeros(())
    return call

  latencies = harness.interleaved_latencies(
      {'short': sleeper('short', 0.01), 'long': sleeper('long', 0.03)},
      rounds=3, repeats=2, warmup=1, settle=1)
  assert {name: len(values) for name, values in latencies.items()} == {
      'short': 6, 'long': 6}
  # One warm-up, then per round one settling call and two timed ones.
  assert counts == {'short': 1 + 3 * 3, 'long': 1 + 3 * 3}
  assert np.all(latencies['short'] >= 0.01) and np.all(latencies['long'] >= 0.03)
  assert np.median(latencies['long']) > np.median(latencies['short']) + 0.015
