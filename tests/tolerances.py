"""The float32 error model behind the tests' tolerances.

Two float32 evaluations of one function that differ only in the order or
algorithm of their sums (JAX vs torch, 4 devices vs 1, 2 processes vs 1,
another CPU vector width) differ by rounding alone. Each rounding is off by
at most u = 2**-24 relative (uniform in +-u/2 ulp-wise: variance u**2 / 12),
and independent rounding errors add in quadrature (Higham and Mary, "A new
approach to probabilistic rounding error analysis", SIAM J. Sci. Comput.
41(5), 2019). Along a chain of `depth` sums of at most `length` terms, each
fed to a normalised layer (BatchNorm, LayerNorm, softmax: gain ~1), an
output carries about depth x length roundings, so

  |difference| <= sqrt(depth x length) u x scale,

3.5 standard deviations of their sum, with `scale` the largest |value|.
"""

import math

from cost_jax import crops

U = 2.0**-24


def roundings(count, scale=1.0):
  """Bound on |difference| of values of magnitude <= `scale` that carry
  `count` independent roundings."""
  return math.sqrt(count) * U * scale


def reordered(depth, length, scale=1.0):
  """Bound on |difference| of a chain of `depth` sums of <= `length` terms
  evaluated in two orders, for outputs of magnitude <= `scale`."""
  return roundings(depth * length, scale)


# The smoke network's forward pass: ~41 sums (10 convs, input projection,
# fusion layer and decoder, 3 convs, BERT and VLT layers, head) of <= 482
# terms (the VLT's 441 + 40 + 1 tokens), relative to the outputs' scale.
SMOKE_FORWARD_RTOL = reordered(depth=41, length=482)  # 8.4e-6


def smoke_tracking_px(boxes, factor):
  """Bound on |box difference| in pixels of two trackers running the smoke
  network in other summation orders over a video whose boxes are `boxes`.

  A box is the network's crop-relative output times the search crop side
  s_x (`factor` x context), so per frame it differs by SMOKE_FORWARD_RTOL x
  s_x. The next crop is placed by that box, so the frames' differences add,
  in quadrature, over the video. This holds while no decision is within it
  of a tie (the argmax cell, the ceil of s_x); a flip would jump by a grid
  cell (s_x / 21 px), not drift.
  """
  s_x = max(crops.context_crop_side(w, h, factor) for _, _, w, h in boxes)
  return math.sqrt(len(boxes)) * SMOKE_FORWARD_RTOL * (s_x + 1)
