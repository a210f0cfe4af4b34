"""A pre-norm Transformer encoder with learned or rotary positions.

Each block is LayerNorm -> self-attention -> residual, then LayerNorm -> MLP ->
residual; a final LayerNorm closes the stack. Padding keys are masked out of
every attention, and a causal encoder also masks keys after the query.

Rotary positions (Su et al. 2021, "RoFormer") rotate each pair of query and
key features by an angle proportional to the position, so a query-key score
depends on the two positions only through their difference.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqad.models import flat

POSITIONS = ('learned', 'rotary')


def rotary_angles(positions: jnp.ndarray, head_dim: int,
                  base: float = 10_000.0) -> jnp.ndarray:
  """Rotation angles [time, head_dim // 2] of positions [time].

  Feature pair i turns at frequency base^(-2i / head_dim), so the pairs cover
  wavelengths from 2*pi to about 2*pi*base positions.
  """
  frequencies = base ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
  return positions.astype(jnp.float32)[:, None] * frequencies


def apply_rotary(features: jnp.ndarray, positions: jnp.ndarray) -> jnp.ndarray:
  """Rotates queries or keys [time, heads, head_dim] by their positions [time].

  Feature j of the first half and feature j of the second half form one pair
  (the "rotate half" layout, which needs no interleaving).
  """
  angles = rotary_angles(positions, features.shape[-1])[:, None, :]
  cos, sin = jnp.cos(angles), jnp.sin(angles)
  first, second = jnp.split(features.astype(jnp.float32), 2, axis=-1)
  rotated = jnp.concatenate(
      [first * cos - second * sin, second * cos + first * sin], axis=-1)
  return rotated.astype(features.dtype)


class SelfAttention(nn.Module):
  """Multi-head self-attention over [batch, time, hidden].

  Attributes:
    num_heads: attention heads; they split `hidden` evenly.
    causal: mask keys after each query.
    rotary: rotate queries and keys by their positions.
  """

  num_heads: int
  causal: bool = True
  rotary: bool = False

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    hidden = inputs.shape[-1]
    head_dim = hidden // self.num_heads
    # One matmul for all three projections: [batch, time, 3, heads, head_dim].
    projected = flat.dense(
        nn.DenseGeneral((3, self.num_heads, head_dim), name='qkv'), inputs)
    query, key, value = [projected[:, :, i] for i in range(3)]

    if self.rotary:
      positions = jnp.arange(inputs.shape[1])
      rotate = jax.vmap(apply_rotary, in_axes=(0, None))
      query, key = rotate(query, positions), rotate(key, positions)

    # The key mask broadcasts to [batch, heads, query time, key time]. A row
    # with no real event at all attends uniformly: the xla implementation masks
    # with a large finite number, so its (unused) outputs stay finite.
    key_mask = mask[:, None, None, :]
    # TODO: on CPU this path materialises the [batch, heads, time, time] scores;
    # from 1,024 events on it trains 5-8x slower than PyTorch's blocked attention
    # (results/throughput/length.md). A chunked, flash-style attention written
    # with lax.scan over key blocks would bound that memory traffic.
    attended = jax.nn.dot_product_attention(
        query, key, value, mask=key_mask, is_causal=self.causal)
    # [b, t, heads, head_dim] rows -> [b * t, heads, head_dim]: one 2-D product.
    rows = attended.reshape((-1,) + attended.shape[-2:])
    out = nn.DenseGeneral(hidden, axis=(-2, -1), name='out')(rows)
    return out.reshape(attended.shape[:-2] + (hidden,))


class TransformerEncoder(nn.Module):
  """Pre-norm Transformer: [batch, time, features] -> [batch, time, hidden].

  Attributes:
    hidden: model width.
    num_layers: blocks.
    num_heads: attention heads per block; must divide `hidden`.
    mlp_ratio: MLP width as a multiple of `hidden`.
    causal: each position sees only itself and earlier positions.
    positions: 'learned' (an added table of `max_length` rows) or 'rotary'.
    max_length: longest window the learned position table covers.
    dropout: dropout rate after attention and MLP, when not deterministic.
  """

  hidden: int = 128
  num_layers: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  causal: bool = True
  positions: str = 'rotary'
  max_length: int = 4096
  dropout: float = 0.0

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, mask: jnp.ndarray, *,
               deterministic: bool = True) -> jnp.ndarray:
    """Encodes `inputs` [batch, time, features] with `mask` [batch, time] bool.

    Outputs at padded positions are unspecified. Dropout needs a 'dropout'
    rng when `deterministic` is False.
    """
    self._check(inputs.shape[1])
    hidden = inputs
    if inputs.shape[-1] != self.hidden:
      hidden = flat.dense(nn.Dense(self.hidden, name='input'), inputs)

    if self.positions == 'learned':
      table = self.param(
          'position_embedding', nn.initializers.normal(0.02),
          (self.max_length, self.hidden))
      hidden = hidden + table[:inputs.shape[1]].astype(hidden.dtype)

    for layer in range(self.num_layers):
      attention = SelfAttention(
          self.num_heads, self.causal, self.positions == 'rotary',
          name=f'attention_{layer}')
      update = attention(nn.LayerNorm(name=f'attention_norm_{layer}')(hidden), mask)
      hidden = hidden + nn.Dropout(self.dropout)(update, deterministic)

      update = nn.LayerNorm(name=f'mlp_norm_{layer}')(hidden)
      update = flat.dense(nn.Dense(self.mlp_ratio * self.hidden, name=f'mlp_in_{layer}'),
                          update)
      update = nn.gelu(update)
      update = flat.dense(nn.Dense(self.hidden, name=f'mlp_out_{layer}'), update)
      hidden = hidden + nn.Dropout(self.dropout)(update, deterministic)
    return nn.LayerNorm(name='final_norm')(hidden)

  def _check(self, length: int):
    if self.positions not in POSITIONS:
      raise ValueError(
          f'Unknown positions {self.positions!r}; expected one of {POSITIONS}.')
    if self.hidden % self.num_heads:
      raise ValueError(
          f'hidden={self.hidden} is not a multiple of num_heads={self.num_heads}.')
    if self.positions == 'rotary' and (self.hidden // self.num_heads) % 2:
      raise ValueError('Rotary positions need an even head width, got '
                       f'{self.hidden // self.num_heads}.')
    if self.positions == 'learned' and length > self.max_length:
      raise ValueError(f'Window length {length} exceeds max_length={self.max_length}.')
