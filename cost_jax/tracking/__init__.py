"""Online tracking: the TransT/COST tracker, the batched benchmark runner, own-video tracking.

`Tracker` (one stream) is in `cost_jax.tracking.tracker`; the batched runner
in `cost_jax.tracking.runner`; `--mode=track` in `cost_jax.tracking.video`.
Imports are lazy so that `import cost_jax.tracking` does not start JAX.
"""

__all__ = ['Tracker']


def __getattr__(name):
  if name == 'Tracker':
    # Lazy (PEP 562): `import cost_jax.tracking.video` or `.mp4` alone does
    # not load the model code.
    from cost_jax.tracking.tracker import Tracker

    return Tracker
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
