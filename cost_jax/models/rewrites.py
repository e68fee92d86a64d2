"""On/off switch for the models' speed rewrites (equal up to float rounding).

The rewrites: few-channel convolutions as a tap sum on CPU
(`cost_jax.models.cpu_conv`) and attention divided by the softmax sum after
the value product (`cost_jax.models.layers.attend`).  They are on; the
tracker benchmark traces a second copy of the step inside `disabled()` to
time the model as it was before them, in the same run.
"""

import contextlib

__all__ = ['enabled', 'disabled']

_on = [True]


def enabled() -> bool:
  return _on[0]


@contextlib.contextmanager
def disabled():
  """Functions traced inside use the plain formulations."""
  saved = _on[0]
  _on[0] = False
  try:
    yield
  finally:
    _on[0] = saved
