"""cost-jax: COST (contrastive one-stage transformer VL tracker) in JAX/Flax.

`from cost_jax import Tracker` gives the online tracker. Submodules import
lazily so that light users (e.g. `cost_jax.evaluation`, numpy only) never pay
for JAX.
"""

__all__ = ['Tracker']


def __getattr__(name):
  if name == 'Tracker':
    # Lazy (PEP 562): `import cost_jax` stays free of JAX for the analysis.
    from cost_jax.tracking.tracker import Tracker

    return Tracker
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
