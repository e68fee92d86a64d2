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

U = 2.0**-24


def roundings(count, scale=1.0):
  """Bound on |difference| of values of magnitude <= `scale` that carry
  `count` independent roundings."""
  return math.sqrt(count) * U * scale


def reordered(depth, length, scale=1.0):
  """Bound on |difference| of a chain of `depth` sums of <= `length` terms
  evaluated in two orders, for outputs of magnitude <= `scale`."""
  return roundings(depth * length, scale)
