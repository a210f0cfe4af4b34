"""Per-event output heads and their likelihood, shared by every objective.

An event's likelihood factorises over three heads:

  p(event) = p(type, category) * p(item relation | type) * p(time gap)

where the item relation says whether the item is new to the user, the one just
touched, or one touched before, and whether this action on it is repeated (see
`seqad.data.windows`). Conditioning the relation on the type lets a model learn,
e.g., that buying an item the user never looked at is rare while viewing a new
item is common.
"""

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqad.models import flat


def event_keys(tokens: Mapping[str, jnp.ndarray], num_categories: int) -> jnp.ndarray:
  """Joint (event type, category bucket) index of each event, [batch, time]."""
  return tokens['event_type'] * num_categories + tokens['category']


class EventHeads(nn.Module):
  """Maps hidden states [batch, time, hidden] to the logits of each head.

  Returns:
    'key': [batch, time, event_types * categories] logits.
    'relation': [batch, time, event_types, item relations] logits.
    'gap': [batch, time, gap buckets] logits.
  """

  vocab_sizes: Mapping[str, int]

  @nn.compact
  def __call__(self, hidden: jnp.ndarray) -> dict[str, jnp.ndarray]:
    num_types = self.vocab_sizes['event_type']
    num_relations = self.vocab_sizes['item_relation']
    relation = flat.dense(nn.Dense(num_types * num_relations, name='relation_head'), hidden)
    return {
        'key': flat.dense(nn.Dense(num_types * self.vocab_sizes['category'],
                                   name='key_head'), hidden),
        'relation': relation.reshape(relation.shape[:-1] + (num_types, num_relations)),
        'gap': flat.dense(nn.Dense(self.vocab_sizes['gap'], name='gap_head'), hidden),
    }


def _pick(values: jnp.ndarray, index: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
  """values[..., index, ...] along `axis`, as a one-hot weighted sum.

  The same numbers as `take_along_axis` (every other term is an exact zero),
  but its gradient is one fused elementwise product instead of a zero-filled
  buffer and a scatter, which cost more than the head's matmuls on CPU.
  """
  one_hot = jax.nn.one_hot(index, values.shape[axis], dtype=values.dtype, axis=axis)
  return (values * one_hot).sum(axis)


def _nll(logits: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
  """-log softmax(logits)[target] along the last axis, in fp32."""
  return -_pick(jax.nn.log_softmax(logits.astype(jnp.float32)), targets)


# The heads, in the order of `event_nll_by_head`'s last axis.
HEADS = ('key', 'relation', 'gap')


def _head_nlls(logits: Mapping[str, jnp.ndarray], tokens: Mapping[str, jnp.ndarray],
               num_categories: int) -> tuple[jnp.ndarray, ...]:
  """Each head's [batch, time] fp32 negative log-likelihood, in `HEADS` order."""
  key_nll = _nll(logits['key'], event_keys(tokens, num_categories))
  # The relation distribution of the event's own type.
  relation_logits = _pick(logits['relation'], tokens['event_type'][..., None], axis=-2)
  relation_nll = _nll(relation_logits, tokens['item_relation'])
  return key_nll, relation_nll, _nll(logits['gap'], tokens['gap'])


def event_nll(logits: Mapping[str, jnp.ndarray], tokens: Mapping[str, jnp.ndarray],
              num_categories: int) -> jnp.ndarray:
  """Negative log-likelihood of each event under all heads, [batch, time] fp32."""
  key_nll, relation_nll, gap_nll = _head_nlls(logits, tokens, num_categories)
  return key_nll + relation_nll + gap_nll


def event_nll_by_head(logits: Mapping[str, jnp.ndarray],
                      tokens: Mapping[str, jnp.ndarray],
                      num_categories: int) -> jnp.ndarray:
  """[batch, time, len(HEADS)] fp32: each event's negative log-likelihood under
  each head separately (they sum to `event_nll`)."""
  return jnp.stack(_head_nlls(logits, tokens, num_categories), axis=-1)


def key_outside_top_k(logits: Mapping[str, jnp.ndarray], tokens: Mapping[str, jnp.ndarray],
                      num_categories: int, k: int) -> jnp.ndarray:
  """[batch, time] bool: the true key is not among the k most likely (DeepLog)."""
  key_logits = logits['key']
  true_logit = jnp.take_along_axis(
      key_logits, event_keys(tokens, num_categories)[..., None], axis=-1)
  # Ranked by how many keys score strictly higher; ties count in its favour.
  return jnp.sum(key_logits > true_logit, axis=-1) >= k


def masked_mean(values: jnp.ndarray, mask: jnp.ndarray, axis=None) -> jnp.ndarray:
  """Mean of `values` where `mask` is True; 0 where nothing is unmasked."""
  mask = mask.astype(values.dtype)
  return (values * mask).sum(axis) / jnp.maximum(mask.sum(axis), 1.0)
