"""Convolutions of few input channels, written the way XLA:CPU runs them fast.

XLA:CPU hands a convolution to Eigen (im2col + GEMM), which is slow when
the input has few channels and the output few features: the ResNet stem
(7x7, stride 2, 3 -> 8 or 16 features) of the `smoke` and `demo` models took
10 of the 36 ms of a batch-16 tracking step on one core (PyTorch/oneDNN:
2.5 ms).  The same convolution written as a sum over its kh * kw * cin taps
(a strided slice of the input times one kernel row) is a single fused
elementwise loop that XLA vectorises over the output features: 3 ms.

`conv_general_dilated` is a drop-in for `lax.conv_general_dilated` (the
`conv_general_dilated` of `flax.linen.Conv`).  It takes the tap sum only on
CPU, for float32 NHWC / HWIO convolutions of concrete shapes with at most
`MAX_IN` input channels and `MAX_OUT` features (wider outputs are faster in
Eigen: measured 10 vs 23 ms at 64 features); anything else, exports traced
with a symbolic batch included, goes to lax.  The tap sum adds the same
products in another order: results differ by float32 rounding (as any two
orders of a sum of kh*kw*cin terms).  Only the forward pass changes: the
gradient is that of `lax.conv_general_dilated` (the tap sum's own gradient
is 9x slower).  Inside `cost_jax.models.rewrites.disabled()` every
convolution goes to lax.
"""

import functools

import jax
from jax import lax
import jax.numpy as jnp

from cost_jax.models import rewrites

__all__ = ['conv_general_dilated', 'tap_sum_conv']

MAX_IN = 4
MAX_OUT = 32
# Products per partial sum: 3..12 ran alike, one chain of 147 was 2.5x slower.
GROUP = 12
_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _explicit(padding):
  """((lo, hi), (lo, hi)) of non-negative ints, or None."""
  if isinstance(padding, str) or len(padding) != 2:
    return None
  pads = tuple((int(lo), int(hi)) for lo, hi in padding)
  return pads if min(min(p) for p in pads) >= 0 else None


def _takes_tap_sum(
    lhs,
    rhs,
    padding,
    lhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    batch_group_count=1,
    preferred_element_type=None,
    **_,
):
  if not rewrites.enabled() or jax.default_backend() != 'cpu':
    return False
  if lhs.ndim != 4 or rhs.ndim != 4 or _explicit(padding) is None:
    return False
  if not all(isinstance(d, int) for d in lhs.shape):
    return False  # a symbolic batch: an exported graph, for any backend
  if lhs.dtype != jnp.float32 or rhs.dtype != jnp.float32:
    return False
  if rhs.shape[2] > MAX_IN or rhs.shape[3] > MAX_OUT:
    return False
  if (feature_group_count, batch_group_count) != (1, 1):
    return False
  if preferred_element_type is not None or any(
      d != 1 for d in lhs_dilation or ()
  ):
    return False
  nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
  asked = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  return asked == nhwc


def conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs):
  """`lax.conv_general_dilated` (same arguments), by the tap sum where that
  is faster (above)."""
  if _takes_tap_sum(lhs, rhs, padding, **kwargs):
    dilation = kwargs.get('rhs_dilation') or (1, 1)
    return tap_sum_conv(
        lhs,
        rhs,
        tuple(int(s) for s in window_strides),
        _explicit(padding),
        tuple(int(d) for d in dilation),
    )
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)


def _lax_conv(x, w, strides, padding, dilation):
  return lax.conv_general_dilated(
      x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=_NHWC
  )


def _tap_sum(x, w, strides, padding, dilation):
  kh, kw, cin, _ = w.shape
  (sh, sw), (dh, dw) = strides, dilation
  x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  oh = (x.shape[1] - dh * (kh - 1) - 1) // sh + 1
  ow = (x.shape[2] - dw * (kw - 1) - 1) // sw + 1
  taps = [(i, j, c) for i in range(kh) for j in range(kw) for c in range(cin)]
  out = None
  for first in range(0, len(taps), GROUP):
    part = None
    for i, j, c in taps[first : first + GROUP]:
      y, x0 = i * dh, j * dw
      tap = lax.slice(
          x,
          (0, y, x0, c),
          (x.shape[0], y + (oh - 1) * sh + 1, x0 + (ow - 1) * sw + 1, c + 1),
          (1, sh, sw, 1),
      )
      term = tap * w[i, j, c]
      part = term if part is None else part + term
    out = part if out is None else out + part
  return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def tap_sum_conv(x, w, strides, padding, dilation):
  """NHWC x HWIO convolution as a sum of strided slices times kernel rows.

  strides, dilation: (h, w) ints; padding: ((lo, hi), (lo, hi)), lo, hi >= 0.
  """
  return _tap_sum(x, w, strides, padding, dilation)


def _tap_sum_fwd(x, w, strides, padding, dilation):
  return _tap_sum(x, w, strides, padding, dilation), (x, w)


def _tap_sum_bwd(strides, padding, dilation, residuals, grad):
  conv = functools.partial(
      _lax_conv, strides=strides, padding=padding, dilation=dilation
  )
  return jax.vjp(conv, *residuals)[1](grad)


tap_sum_conv.defvjp(_tap_sum_fwd, _tap_sum_bwd)
