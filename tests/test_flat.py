"""Flattened matrix products equal the layer and einsum they replace."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seqad.models import flat


def test_dense_on_flattened_rows_equals_the_layer_with_its_gradients():
  inputs = jax.random.normal(jax.random.key(0), (3, 5, 4))
  layer = nn.Dense(6)
  params = layer.init(jax.random.key(1), inputs)

  def loss(params, inputs, apply):
    return (apply(params, inputs) ** 2).sum()

  plain = lambda p, x: layer.apply(p, x)
  flattened = lambda p, x: flat.dense(lambda rows: layer.apply(p, rows), x)
  np.testing.assert_allclose(flattened(params, inputs), plain(params, inputs), rtol=1e-6)
  for got, want in zip(jax.tree.leaves(jax.grad(loss, (0, 1))(params, inputs, flattened)),
                       jax.tree.leaves(jax.grad(loss, (0, 1))(params, inputs, plain))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_matmul_and_outer_sum_equal_their_einsums():
  left = jax.random.normal(jax.random.key(0), (4, 3, 5))
  right = jax.random.normal(jax.random.key(1), (4, 3, 7))
  kernel = jax.random.normal(jax.random.key(2), (5, 7))
  np.testing.assert_allclose(flat.matmul(left, kernel),
                             jnp.einsum('tbi,ij->tbj', left, kernel), rtol=1e-5)
  np.testing.assert_allclose(flat.outer_sum(left, right),
                             jnp.einsum('tbi,tbj->ij', left, right), rtol=1e-5)
