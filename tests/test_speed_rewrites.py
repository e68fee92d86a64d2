"""The models' speed rewrites (cost_jax.models.rewrites) equal the plain
formulations up to float32 rounding, and take only the cases they are for."""

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from cost_jax.models import cpu_conv
from cost_jax.models import layers
from cost_jax.models import rewrites
from tests import tolerances

NHWC = ('NHWC', 'HWIO', 'NHWC')


def _conv(fn, x, w, stride, pad, dilation):
  dn = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
  return fn(
      x,
      w,
      (stride, stride),
      ((pad, pad), (pad, pad)),
      rhs_dilation=(dilation, dilation),
      dimension_numbers=dn,
  )


@pytest.mark.parametrize(
    'shape, kernel, stride, pad, dilation, out',
    [
        ((2, 33, 31, 3), 7, 2, 3, 1, 8),  # the ResNet stem, odd sizes
        ((2, 20, 20, 4), 3, 1, 2, 2, 16),
        ((1, 9, 9, 1), 3, 2, 0, 1, 5),
    ],
)
def test_tap_sum_is_the_convolution(shape, kernel, stride, pad, dilation, out):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  w = jnp.asarray(
      rng.standard_normal((kernel, kernel, shape[3], out)), jnp.float32
  )
  args = (stride, pad, dilation)
  got = _conv(cpu_conv.conv_general_dilated, x, w, *args)
  want = _conv(lax.conv_general_dilated, x, w, *args)
  # The same kernel*kernel*cin products summed in two orders; every partial
  # sum is at most sum|x*w|, the convolution of |x| and |w|.
  terms = kernel * kernel * shape[3]
  scale = float(
      jnp.max(_conv(lax.conv_general_dilated, jnp.abs(x), jnp.abs(w), *args))
  )
  np.testing.assert_allclose(
      got, want, rtol=0, atol=tolerances.reordered(1, terms, scale)
  )
  # The gradient is lax's own VJP at the same point: bit for bit.
  cotangent = jnp.asarray(rng.standard_normal(want.shape), jnp.float32)
  grads = [
      jax.vjp(lambda x, w, fn=fn: _conv(fn, x, w, *args), x, w)[1](cotangent)
      for fn in (cpu_conv.conv_general_dilated, lax.conv_general_dilated)
  ]
  for g, h in zip(*grads):
    np.testing.assert_array_equal(g, h)


def _takes(x_shape, w_shape, dtype=jnp.float32):
  x = jax.ShapeDtypeStruct(x_shape, dtype)
  w = jax.ShapeDtypeStruct(w_shape, dtype)
  dn = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
  return cpu_conv._takes_tap_sum(
      x, w, ((3, 3), (3, 3)), dimension_numbers=dn  # noqa: SLF001
  )


def test_tap_sum_only_for_few_channel_float32_convolutions_on_cpu():
  assert jax.default_backend() == 'cpu'
  assert _takes((16, 128, 128, 3), (7, 7, 3, 8))  # smoke / demo stem
  assert _takes((16, 96, 96, 3), (7, 7, 3, 32))
  assert not _takes((16, 256, 256, 3), (7, 7, 3, 64))  # paper stem: Eigen
  assert not _takes((16, 32, 32, 16), (3, 3, 16, 16))
  assert not _takes((16, 128, 128, 3), (7, 7, 3, 8), jnp.bfloat16)
  batch = jax.export.symbolic_shape('b')[0]  # exported graphs: plain conv
  assert not _takes((batch, 128, 128, 3), (7, 7, 3, 8))
  with rewrites.disabled():
    assert not _takes((16, 128, 128, 3), (7, 7, 3, 8))
  assert _takes((16, 128, 128, 3), (7, 7, 3, 8))


def test_attend_is_the_softmax_weights_times_the_values():
  rng = np.random.default_rng(1)
  q, k, v = (
      jnp.asarray(rng.standard_normal((2, 3, n, 8)), jnp.float32)
      for n in (5, 7, 7)
  )
  key_mask = jnp.asarray([[True] * 7, [True] * 4 + [False] * 3])
  keep = jnp.asarray(rng.random((2, 3, 5, 7)) > 0.5)
  drop = lambda w: jnp.where(keep, w * 2.0, 0.0)  # dropout, p = 0.5
  for d in (None, drop):
    got = layers.attend(q, k, v, key_mask, d)
    weights = layers.attention_weights(q, k, key_mask)
    want = jnp.einsum(
        'bhqk,bhkd->bhqd', weights if d is None else d(weights), v
    )
    # Outputs are (dropped-out) convex combinations of the values, <= 2
    # max|v|; both sum 7 products, one divides each weight by the softmax
    # sum, the other the result (1 rounding each).
    scale = 2.0 * float(jnp.max(jnp.abs(v)))
    np.testing.assert_allclose(
        got, want, rtol=0, atol=tolerances.reordered(1, 7 + 1, scale)
    )
  with_mask = layers.attend(q, k, v, key_mask)
  masked_v = v.at[1, :, 4:].set(1e3)  # masked keys have no weight
  np.testing.assert_array_equal(
      layers.attend(q, k, masked_v, key_mask), with_mask
  )
