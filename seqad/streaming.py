"""Streaming scoring: one event at a time, at a cost that does not grow with history.

A next-event detector on a causal recurrent encoder (lstm, gru, ssm) scores
event t from the encoder state after events 0..t-1, so a live scorer only has
to carry that state from one event to the next:

  state_0  = encoder state after the learned start event
  score_t  = event score of event t under the heads applied to state_{t-1}
  state_t  = encoder step of state_{t-1} with event t's embedding

Each stream (a user or session) has its own fixed-size state, so an event costs
the same whether it is a user's first or their ten-thousandth, unlike scoring
by windows, which rereads the whole window on every new event. The per-event
step is one jitted function of (params, state, event) compiled once for a
number of streams; inactive streams keep their state, so streams that receive
events at different times share one batched call.

The window score is kept up to date alongside (the same aggregation as window
scoring: running mean, running max, or the mean of the k highest event scores
so far), so that over the first `window_length` events of a stream the
streamed scores equal what `Objective.event_scores` and `objectives.aggregate`
give for a window holding those events.
"""

from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from seqad.models import embedding
from seqad.models import heads
from seqad.models import objectives

# Encoders whose causal version has an `initial_state` / `step` pair.
STREAMABLE_ENCODERS = ('lstm', 'gru', 'ssm')
AGGREGATIONS = ('mean', 'max', 'top_k')
# Where `objectives.NextEventModel` keeps its parts' parameters.
_EMBEDDING, _HEADS, _ENCODER, _START = 'EventEmbedding_0', 'EventHeads_0', 'encoder', 'start'


@flax.struct.dataclass
class StreamState:
  """Everything a scorer remembers about its streams, each leading axis [streams].

  Attributes:
    encoder: the encoder's per-layer states after the stream's last event.
    hidden: [streams, hidden] encoder output for that event: it predicts the next.
    events: [streams] int32 events scored so far.
    total: [streams] float32 sum of their event scores ('mean').
    peak: [streams] float32 highest event score, -inf before any ('max').
    top: [streams, k] float32 the k highest event scores, -inf padded ('top_k').
  """

  encoder: Any
  hidden: jnp.ndarray
  events: jnp.ndarray
  total: jnp.ndarray
  peak: jnp.ndarray
  top: jnp.ndarray


def _check_streamable(objective: objectives.Objective):
  encoder = objective.model.encoder
  if objective.name != 'next':
    raise ValueError(f'Only next-event objectives can stream; got {objective.name!r}.')
  if not (hasattr(encoder, 'step') and hasattr(encoder, 'initial_state')):
    raise ValueError(f'{type(encoder).__name__} has no one-event step: streaming needs '
                     f'one of the encoders {STREAMABLE_ENCODERS}.')
  if not encoder.causal:
    raise ValueError('A bidirectional encoder cannot score one event at a time.')


def _parts(params: Mapping) -> Mapping:
  """The model's parameter subtrees by part, with a clear error if one is missing."""
  tree = params['params']
  missing = {_EMBEDDING, _HEADS, _ENCODER, _START} - set(tree)
  if missing:
    raise KeyError(f'Not a NextEventModel parameter tree: missing {sorted(missing)}.')
  return tree


class StreamingScorer:
  """Scores events as they arrive, for `num_streams` streams at once.

  Args:
    objective: a 'next' objective on a causal lstm, gru or ssm encoder.
    num_streams: streams advanced by one call (the compiled batch size).
    aggregation: window score of the events so far: 'mean', 'max' or 'top_k'.
    k: events averaged by 'top_k'.

  Usage:
    scorer = StreamingScorer(objective, num_streams=256)
    state = scorer.initial_state(params)
    state, event_scores, window_scores = scorer.step(params, state, tokens, active)
  where `tokens` is {field: [streams] int32}, one event per stream, and
  `active` [streams] bool says which streams have an event in this call.
  """

  def __init__(self, objective: objectives.Objective, num_streams: int,
               aggregation: str = 'mean', k: int = 8):
    _check_streamable(objective)
    if aggregation not in AGGREGATIONS:
      raise ValueError(f'Unknown aggregation {aggregation!r}; expected one of '
                       f'{AGGREGATIONS}.')
    if num_streams < 1:
      raise ValueError(f'num_streams must be at least 1, got {num_streams}.')
    self.objective = objective
    self.num_streams = num_streams
    self.aggregation = aggregation
    self.k = k
    model = objective.model
    self._encoder = model.encoder
    self._embedding = embedding.EventEmbedding(model.vocab_sizes, model.embed_dim)
    self._heads = heads.EventHeads(model.vocab_sizes)
    self._initial = jax.jit(self._initial_state)
    self._step = jax.jit(self._advance, donate_argnums=1)
    self._reset = jax.jit(self._reset_streams, donate_argnums=1)

  # Pure functions of the parameters; jitted once in __init__.

  def _encode(self, tree, encoder_state, inputs):
    return self._encoder.apply({'params': tree[_ENCODER]}, encoder_state, inputs,
                               method='step')

  def _initial_state(self, params) -> StreamState:
    tree = _parts(params)
    streams = self.num_streams
    start = jnp.broadcast_to(tree[_START], (streams, tree[_START].shape[-1]))
    encoder_state, hidden = self._encode(
        tree, self._encoder.initial_state(streams), start)
    return StreamState(
        encoder=encoder_state, hidden=hidden, events=jnp.zeros(streams, jnp.int32),
        total=jnp.zeros(streams, jnp.float32),
        peak=jnp.full(streams, -jnp.inf, jnp.float32),
        top=jnp.full((streams, self.k), -jnp.inf, jnp.float32))

  def _event_scores(self, tree, hidden, tokens):
    """[streams] scores of events `tokens` given the states `hidden` before them."""
    logits = self._heads.apply({'params': tree[_HEADS]}, hidden[:, None])
    tokens = {field: values[:, None] for field, values in tokens.items()}
    config = self.objective.config
    if config.event_score == 'top_k':
      scores = heads.key_outside_top_k(
          logits, tokens, self.objective.num_categories, config.top_k)
      return scores[:, 0].astype(jnp.float32)
    return heads.event_nll(logits, tokens, self.objective.num_categories)[:, 0]

  def _window_scores(self, state: StreamState) -> jnp.ndarray:
    if self.aggregation == 'mean':
      return state.total / jnp.maximum(state.events, 1)
    if self.aggregation == 'max':
      return jnp.where(state.events > 0, state.peak, 0.0)
    valid = jnp.isfinite(state.top)
    return (jnp.where(valid, state.top, 0.0).sum(axis=1) /
            jnp.maximum(valid.sum(axis=1), 1))

  def _advance(self, params, state: StreamState, tokens, active):
    tree = _parts(params)
    scores = self._event_scores(tree, state.hidden, tokens)
    events = self._embedding.apply({'params': tree[_EMBEDDING]}, tokens)
    encoder_state, hidden = self._encode(tree, state.encoder, events)
    top = jax.lax.top_k(jnp.concatenate([state.top, scores[:, None]], axis=1), self.k)[0]
    advanced = StreamState(
        encoder=encoder_state, hidden=hidden, events=state.events + 1,
        total=state.total + scores, peak=jnp.maximum(state.peak, scores), top=top)
    state = _where_streams(active, advanced, state)
    return state, jnp.where(active, scores, 0.0), self._window_scores(state)

  def _reset_streams(self, params, state: StreamState, streams) -> StreamState:
    return _where_streams(streams, self._initial_state(params), state)

  # The public, jitted interface.

  def initial_state(self, params) -> StreamState:
    """Every stream before its first event."""
    return self._initial(params)

  def step(self, params, state: StreamState, tokens: Mapping[str, Any],
           active: Any = None):
    """Scores one event per active stream and advances those streams.

    Args:
      params: the trained model parameters.
      state: from `initial_state`, `step` or `reset`; donated (do not reuse it).
      tokens: field -> [streams] int32, each stream's new event (any value
        where the stream is inactive).
      active: [streams] bool; None means every stream has an event.

    Returns:
      (state, event_scores [streams], window_scores [streams]): the new
      state, each active stream's score of its event (0 where inactive), and
      every stream's window score of its events so far (0 before any).
    """
    if active is None:
      active = np.ones(self.num_streams, bool)
    return self._step(params, state, dict(tokens), active)

  def reset(self, params, state: StreamState, streams: Any) -> StreamState:
    """Starts the streams where `streams` [streams] bool is True afresh (new users)."""
    return self._reset(params, state, streams)

  def compiled_steps(self) -> int:
    """How many times the per-event step has been compiled (1 after any number of calls)."""
    return self._step._cache_size()  # pylint: disable=protected-access


def _where_streams(streams: jnp.ndarray, chosen, other):
  """Per stream, the leaves of `chosen` where `streams` [streams] is True, else `other`."""

  def pick(a, b):
    return jnp.where(streams.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

  return jax.tree.map(pick, chosen, other)
