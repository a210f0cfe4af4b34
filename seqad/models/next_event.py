"""Next-event likelihood model: how surprising is each event given the ones before it.

The model reads a window of events and, at every position t, predicts event t
from events 0..t-1 only (a learned start vector stands in before event 0). An
event's likelihood factorises over three heads:

  p(event) = p(type, category) * p(item relation | type) * p(time gap)

where the item relation says whether the item is new to the user, the one just
touched, or one touched before (see `seqad.data.windows`). Conditioning the
relation on the type lets the model learn, e.g., that a purchase of an item the
user never looked at is rare while a view of a new item is common. An event's
anomaly score is its negative log-likelihood.
"""

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqad.models import embedding
from seqad.models import lstm


def event_keys(tokens: Mapping[str, jnp.ndarray], num_categories: int) -> jnp.ndarray:
  """Joint (event type, category bucket) index of each event, [batch, time]."""
  return tokens['event_type'] * num_categories + tokens['category']


class NextEventLSTM(nn.Module):
  """Stacked-LSTM next-event predictor.

  Attributes:
    vocab_sizes: field name -> vocabulary size (see `seqad.data.windows`).
    embed_dim: event embedding width.
    hidden: LSTM state width.
    num_layers: stacked LSTM layers.
  """

  vocab_sizes: Mapping[str, int]
  embed_dim: int = 64
  hidden: int = 128
  num_layers: int = 1
  unroll: int = 1

  @nn.compact
  def __call__(self, tokens: Mapping[str, jnp.ndarray]) -> dict[str, jnp.ndarray]:
    """Returns logits for each position's own event, from the events before it.

    Args:
      tokens: field -> [batch, time] int32.

    Returns:
      'key': [batch, time, event_types * categories] logits.
      'relation': [batch, time, event_types, item relations] logits.
      'gap': [batch, time, gap buckets] logits.
    """
    events = embedding.EventEmbedding(self.vocab_sizes, self.embed_dim)(tokens)
    start = self.param('start', nn.initializers.normal(0.02), (self.embed_dim,))

    # Shift right so that position t sees events 0..t-1 only.
    start = jnp.broadcast_to(start, (events.shape[0], 1, self.embed_dim))
    inputs = jnp.concatenate([start.astype(events.dtype), events[:, :-1]], axis=1)

    hidden = inputs
    for layer in range(self.num_layers):
      hidden = lstm.LSTM(self.hidden, unroll=self.unroll, name=f'lstm_{layer}')(hidden)
    num_types = self.vocab_sizes['event_type']
    num_relations = self.vocab_sizes['item_relation']
    relation = nn.Dense(num_types * num_relations, name='relation_head')(hidden)
    return {
        'key': nn.Dense(num_types * self.vocab_sizes['category'], name='key_head')(hidden),
        'relation': relation.reshape(relation.shape[:-1] + (num_types, num_relations)),
        'gap': nn.Dense(self.vocab_sizes['gap'], name='gap_head')(hidden),
    }


def _nll(logits: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
  """-log softmax(logits)[target] along the last axis, in fp32."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  return -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


def event_nll(logits: Mapping[str, jnp.ndarray], tokens: Mapping[str, jnp.ndarray],
              num_categories: int) -> jnp.ndarray:
  """Negative log-likelihood of each event under all heads, [batch, time] fp32."""
  key_nll = _nll(logits['key'], event_keys(tokens, num_categories))
  # The relation distribution of the event's own type.
  relation_logits = jnp.take_along_axis(
      logits['relation'], tokens['event_type'][..., None, None], axis=-2)[..., 0, :]
  relation_nll = _nll(relation_logits, tokens['item_relation'])
  return key_nll + relation_nll + _nll(logits['gap'], tokens['gap'])


def masked_mean(values: jnp.ndarray, mask: jnp.ndarray, axis=None) -> jnp.ndarray:
  """Mean of `values` where `mask` is True; 0 where nothing is unmasked."""
  mask = mask.astype(values.dtype)
  return (values * mask).sum(axis) / jnp.maximum(mask.sum(axis), 1.0)
