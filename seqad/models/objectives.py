"""Anomaly objectives: how an encoder is trained and how it scores each event.

An objective wraps an encoder (any module of `seqad.models.encoders`) into a
model and defines, as pure functions of the parameters:

  loss_terms(params, batch, rng) -> (sum, weight)  the summed training loss
                                           and what it is averaged over
  loss(params, batch, rng) -> scalar       their ratio, the training loss
  event_scores(params, batch) -> [b, t]   per-event anomaly scores (higher = worse)
  head_event_scores(params, batch) -> [b, t, heads]  the same per likelihood head

Objectives never read device counts or jit anything; the detector does that.
`batch` is {'tokens': {field: [b, t] int32}, 'mask': [b, t] bool} plus
'label' [b] float32 for the supervised objective only.

  next     next-event likelihood (causal encoders): each event's negative
           log-likelihood given the events before it, or, as in DeepLog, whether
           the true (type, category) is outside the model's top-k predictions.
  masked   masked-event prediction (bidirectional encoders, BERT-style): hidden
           events are predicted from both sides; at scoring time every event is
           hidden exactly once over `score_passes` passes.
  ae       autoencoding: the window is squeezed through a `bottleneck`-wide code
           and every event is reconstructed from it and its position.
  sup      supervised classification of windows (needs labelled anomalous
           windows in training; for comparison, never a default).
"""

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from seqad.models import embedding
from seqad.models import flat
from seqad.models import heads

OBJECTIVES = ('next', 'masked', 'ae', 'sup')
# Whether each objective needs a causal encoder (True) or a bidirectional one.
CAUSAL = {'next': True, 'masked': False, 'ae': False, 'sup': False}


class _EncoderModel(nn.Module):
  """Fields shared by every objective's model.

  Attributes:
    vocab_sizes: field -> vocabulary size.
    embed_dim: width of the event embedding fed to the encoder.
    encoder: a module of `seqad.models.encoders`, [b, t, embed_dim] -> [b, t, hidden].
  """

  vocab_sizes: Mapping[str, int]
  embed_dim: int
  encoder: nn.Module


class NextEventModel(_EncoderModel):
  """Position t's logits are computed from events 0..t-1 (a learned start first)."""

  @nn.compact
  def __call__(self, tokens, mask, *, deterministic: bool = True):
    events = embedding.EventEmbedding(self.vocab_sizes, self.embed_dim)(tokens)
    start = self.param('start', nn.initializers.normal(0.02), (self.embed_dim,))
    start = jnp.broadcast_to(start.astype(events.dtype), (events.shape[0], 1, self.embed_dim))
    inputs = jnp.concatenate([start, events[:, :-1]], axis=1)
    hidden = self.encoder(inputs, mask, deterministic=deterministic)
    return heads.EventHeads(self.vocab_sizes)(hidden)


class MaskedEventModel(_EncoderModel):
  """Events where `hide` is True are replaced by a learned vector, then predicted."""

  @nn.compact
  def __call__(self, tokens, mask, hide, *, deterministic: bool = True):
    events = embedding.EventEmbedding(self.vocab_sizes, self.embed_dim)(tokens)
    hidden_event = self.param('hidden_event', nn.initializers.normal(0.02),
                              (self.embed_dim,))
    events = jnp.where(hide[..., None], hidden_event.astype(events.dtype), events)
    hidden = self.encoder(events, mask, deterministic=deterministic)
    return heads.EventHeads(self.vocab_sizes)(hidden)


class AutoencoderModel(_EncoderModel):
  """Encode the window to a `bottleneck` code, decode every position from it."""

  bottleneck: int
  max_length: int = 4096

  @nn.compact
  def __call__(self, tokens, mask, *, deterministic: bool = True):
    events = embedding.EventEmbedding(self.vocab_sizes, self.embed_dim)(tokens)
    hidden = self.encoder(events, mask, deterministic=deterministic)
    # The first and last real states summarise the window in order (a
    # bidirectional encoder's ends have read all of it); the mean adds the mix.
    last = jnp.maximum(mask.sum(axis=1) - 1, 0)
    ends = [hidden[:, 0], jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]]
    pooled = jnp.concatenate(ends + [heads.masked_mean(hidden, mask[..., None], axis=1)],
                             axis=-1)
    code = jnp.tanh(nn.Dense(self.bottleneck, name='code')(pooled))

    # Each position is decoded from the code and its position alone.
    length = tokens['event_type'].shape[1]
    positions = nn.Embed(self.max_length, self.embed_dim, name='positions')(
        jnp.arange(length))
    decoded = nn.Dense(self.embed_dim, name='expand')(code)[:, None, :] + positions
    for layer in range(2):
      decoded = nn.gelu(flat.dense(nn.Dense(4 * self.embed_dim, name=f'decoder_{layer}'),
                                   decoded))
    return heads.EventHeads(self.vocab_sizes)(decoded)


class ClassifierModel(_EncoderModel):
  """One anomaly logit per window from pooled encoder states."""

  @nn.compact
  def __call__(self, tokens, mask, *, deterministic: bool = True):
    events = embedding.EventEmbedding(self.vocab_sizes, self.embed_dim)(tokens)
    hidden = self.encoder(events, mask, deterministic=deterministic)
    mean = heads.masked_mean(hidden, mask[..., None], axis=1)
    peak = jnp.max(jnp.where(mask[..., None], hidden, -jnp.inf), axis=1)
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)
    return nn.Dense(1, name='logit')(jnp.concatenate([mean, peak], axis=-1))[:, 0]


class Objective:
  """Pairs a model with its loss and per-event scores.

  Args:
    name: one of `OBJECTIVES`.
    vocab_sizes: field -> vocabulary size.
    encoder: an encoder module built with the direction `CAUSAL[name]`.
    config: the neural config section (embed_dim, top_k, event_score,
      mask_rate, score_passes, bottleneck).
  """

  def __init__(self, name: str, vocab_sizes: Mapping[str, int], encoder: nn.Module,
               config: Any):
    if name not in OBJECTIVES:
      raise ValueError(f'Unknown objective {name!r}; expected one of {OBJECTIVES}.')
    self.name = name
    self.config = config
    self.num_categories = vocab_sizes['category']
    vocab_sizes = dict(vocab_sizes)
    if name == 'next':
      self.model = NextEventModel(vocab_sizes, config.embed_dim, encoder)
    elif name == 'masked':
      self.model = MaskedEventModel(vocab_sizes, config.embed_dim, encoder)
    elif name == 'ae':
      self.model = AutoencoderModel(vocab_sizes, config.embed_dim, encoder,
                                    config.bottleneck)
    else:
      self.model = ClassifierModel(vocab_sizes, config.embed_dim, encoder)

  def _apply(self, params, batch, hide=None, deterministic=True, rng=None):
    rngs = None if rng is None else {'dropout': rng}
    if self.name == 'masked':
      return self.model.apply(params, batch['tokens'], batch['mask'], hide,
                              deterministic=deterministic, rngs=rngs)
    return self.model.apply(params, batch['tokens'], batch['mask'],
                            deterministic=deterministic, rngs=rngs)

  def init(self, rng, batch):
    if self.name == 'masked':
      return self.model.init(rng, batch['tokens'], batch['mask'], batch['mask'])
    return self.model.init(rng, batch['tokens'], batch['mask'])

  def _hide_at_random(self, rng, mask, rows):
    """[b, t] bool: real events hidden at `mask_rate`, at least one per row.

    Row r's draws come from `fold_in(rng, rows[r])`, so they do not depend on
    how a batch is split over devices or micro-batches.
    """
    keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, rows)
    draw = jax.vmap(lambda key: jax.random.uniform(key, mask.shape[1:]))(keys)
    hide = (draw < self.config.mask_rate) & mask
    # Rows where nothing was drawn hide their most likely event instead.
    fallback = jax.nn.one_hot(jnp.argmin(jnp.where(mask, draw, 2.0), axis=1),
                              mask.shape[1], dtype=bool) & mask
    return jnp.where(hide.any(axis=1, keepdims=True), hide, fallback)

  def loss_terms(self, params, batch, rng):
    """(summed loss, weight) of a batch, both fp32 scalars: the training loss is
    their ratio. Sums, unlike means, add up exactly over shards of a batch.

    The weight counts what the loss averages over: real events ('next', 'ae'),
    hidden events ('masked') or real windows ('sup'); padded rows count zero.
    Optional 'row' [b] int32 ids key the per-row random draws (default: the
    row's position in `batch`).
    """
    mask = batch['mask']
    rows = batch.get('row', jnp.arange(mask.shape[0], dtype=jnp.int32))
    mask_rng, dropout_rng = jax.random.split(rng)
    # One dropout stream per shard of a batch, keyed by the shard's first row.
    dropout_rng = jax.random.fold_in(dropout_rng, rows[0])
    if self.name == 'sup':
      logits = self._apply(params, batch, deterministic=False, rng=dropout_rng)
      real = mask.any(axis=1)
      losses = optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32),
                                                  batch['label'])
      return (jnp.where(real, losses, 0.0).sum(),
              real.sum().astype(jnp.float32))
    hide = None
    if self.name == 'masked':
      hide = self._hide_at_random(mask_rng, mask, rows)
    logits = self._apply(params, batch, hide, deterministic=False, rng=dropout_rng)
    nll = heads.event_nll(logits, batch['tokens'], self.num_categories)
    weight = mask if hide is None else hide
    return (jnp.where(weight, nll, 0.0).sum(),
            weight.sum().astype(jnp.float32))

  def loss(self, params, batch, rng):
    """Mean training loss of a batch (fp32)."""
    loss_sum, weight = self.loss_terms(params, batch, rng)
    return loss_sum / jnp.maximum(weight, 1.0)

  def event_scores(self, params, batch):
    """[b, t] fp32 anomaly score of every event (meaningless at padding)."""
    tokens, mask = batch['tokens'], batch['mask']
    if self.name == 'sup':
      logits = self._apply(params, batch)
      return jnp.broadcast_to(logits[:, None], mask.shape).astype(jnp.float32)
    if self.name == 'masked':
      return self._masked_event_scores(params, batch)
    logits = self._apply(params, batch)
    if self.name == 'next' and self.config.event_score == 'top_k':
      return heads.key_outside_top_k(
          logits, tokens, self.num_categories, self.config.top_k).astype(jnp.float32)
    return heads.event_nll(logits, tokens, self.num_categories)

  def head_event_scores(self, params, batch):
    """[b, t, len(heads.HEADS)] fp32 negative log-likelihood of every event under
    each head apart (meaningless at padding); not for the supervised objective."""
    if self.name == 'sup':
      raise ValueError('The supervised objective has no likelihood heads.')
    if self.name == 'masked':
      return self._masked_event_scores(params, batch, per_head=True)
    return heads.event_nll_by_head(self._apply(params, batch), batch['tokens'],
                                   self.num_categories)

  def _masked_event_scores(self, params, batch, per_head: bool = False):
    """Every event hidden once: pass p hides positions t with t % passes == p.

    Returns [b, t] scores, or [b, t, len(heads.HEADS)] with `per_head`.
    """
    passes = self.config.score_passes
    mask = batch['mask']
    positions = jnp.arange(mask.shape[1])
    nll_fn = heads.event_nll_by_head if per_head else heads.event_nll
    shape = mask.shape + ((len(heads.HEADS),) if per_head else ())

    def one_pass(scores, p):
      hide = (positions % passes == p)[None, :] & mask
      logits = self._apply(params, batch, hide)
      nll = nll_fn(logits, batch['tokens'], self.num_categories)
      hide = hide[..., None] if per_head else hide
      return jnp.where(hide, nll, scores), None

    scores, _ = jax.lax.scan(one_pass, jnp.zeros(shape, jnp.float32),
                             jnp.arange(passes))
    return scores


def standardised_head_sum(head_scores: jnp.ndarray, center: jnp.ndarray,
                          scale: jnp.ndarray) -> jnp.ndarray:
  """[b] window scores from per-head window scores [b, heads]: the sum over heads
  of how far each lies above its typical value, in its own spread,
  sum_h max(0, (x_h - center_h) / scale_h).

  Raw likelihoods add heads of very different spread, and a repetitive bot is
  *more* predictable than a shopper on the (type, category) head, which then
  cancels the surprise of its pace and item repetition on the other heads.
  Measured against normal windows' spread, each head only adds evidence.
  """
  return jnp.maximum((head_scores - center) / scale, 0.0).sum(axis=-1)


def aggregate(event_scores: jnp.ndarray, mask: jnp.ndarray, how: str, k: int = 8):
  """Window scores [b] from event scores [b, t]: 'mean', 'max' or 'top_k' mean.

  Event scores [b, t, heads] give [b, heads], one window score per head.
  """
  if event_scores.ndim == 3:
    return jax.vmap(lambda s: aggregate(s, mask, how, k), in_axes=-1,
                    out_axes=-1)(event_scores)
  if how == 'mean':
    return heads.masked_mean(event_scores, mask, axis=1)
  masked = jnp.where(mask, event_scores, -jnp.inf)
  if how == 'max':
    peak = masked.max(axis=1)
    return jnp.where(mask.any(axis=1), peak, 0.0)
  if how == 'top_k':
    k = min(k, event_scores.shape[1])
    top = jax.lax.top_k(masked, k)[0]
    valid = jnp.isfinite(top)
    return jnp.where(valid, top, 0.0).sum(axis=1) / jnp.maximum(valid.sum(axis=1), 1)
  raise ValueError(f"Unknown aggregation {how!r}; expected 'mean', 'max' or 'top_k'.")
