"""A shared embedding of multi-field events."""

from typing import Mapping

import flax.linen as nn
import jax.numpy as jnp


class EventEmbedding(nn.Module):
  """Embeds each token field and sums the results.

  Attributes:
    vocab_sizes: field name -> number of token values of that field.
    features: embedding width.
  """

  vocab_sizes: Mapping[str, int]
  features: int

  @nn.compact
  def __call__(self, tokens: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """Maps `tokens` (field -> [batch, time] int) to [batch, time, features]."""
    missing = set(self.vocab_sizes) - set(tokens)
    if missing:
      raise KeyError(f'EventEmbedding is missing token fields {sorted(missing)}.')
    embedded = [
        nn.Embed(size, self.features, name=f'embed_{field}')(tokens[field])
        for field, size in sorted(self.vocab_sizes.items())
    ]
    return nn.LayerNorm(name='norm')(sum(embedded))
