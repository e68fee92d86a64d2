"""The config a trained run is tracked with: the one given, checked against
the config saved with the run's checkpoints.

`--mode=evaluate` and `--mode=track` (and `Tracker.from_workdir`) call
`with_checkpoint_config`:

- The architecture (``config.model`` and the text model's length and depth,
  except fields that change no parameter shape: dtype, dropout, the BatchNorm
  mode) must equal the checkpoint's. A difference is an error that names each
  differing field and the variant the run was trained as.
- The tracker's shape-neutral settings (window, minimum size, size rate, crop
  factors, text-model folder) come from the checkpoint, so a run is tracked as
  it was trained and validated without repeating its overrides. A value given
  on the command line (or, from Python, any value that differs) wins, with a
  warning naming it.
- Everything else (datasets, roots, batch sizes) is the given config's.
"""

from __future__ import annotations

import logging

from flax import traverse_util

from cost_jax import checkpointing

__all__ = ['with_checkpoint_config', 'ARCHITECTURE_TEXT', 'FROM_CHECKPOINT']

# Fields outside config.model that set parameter shapes.
ARCHITECTURE_TEXT = ('text.max_len', 'text.num_layers')
# Fields of config.model that set no parameter shape.
_SHAPE_NEUTRAL_MODEL = ('dtype', 'dropout', 'backbone.norm')
# Tracker settings taken from the checkpoint's config unless given.
FROM_CHECKPOINT = (
    'track.window_influence',
    'track.min_size',
    'track.size_lr',
    'track.motion',
    'track.lost_score',
    'track.redetect_tiles',
    'track.redetect_stride',
    'data.template_factor',
    'data.search_factor',
    'text.path',
)


def _flat(config) -> dict:
  """{'a.b.c': value} of a config (tuples as lists, as saved)."""
  data = checkpointing.config_to_dict(config)
  return {'.'.join(k): v for k, v in traverse_util.flatten_dict(data).items()}


def _is_architecture(key: str) -> bool:
  if key in ARCHITECTURE_TEXT:
    return True
  if not key.startswith('model.'):
    return False
  field = key[len('model.') :]
  return not any(
      field == n or field.endswith('.' + n) for n in _SHAPE_NEUTRAL_MODEL
  )


def architecture_differences(a: dict, b: dict) -> list[str]:
  """'field: trained with X, given Y' for each architecture field that differs
  between the flattened saved (``a``) and given (``b``) configs."""
  keys = sorted(k for k in set(a) | set(b) if _is_architecture(k))
  return [
      f'{k}: trained with {a.get(k)!r}, given {b.get(k)!r}'
      for k in keys
      if a.get(k) != b.get(k)
  ]


def with_checkpoint_config(config, workdir, overrides=None):
  """``config`` checked against, and completed from, WORKDIR's saved config.

  ``overrides``: the fields given on the command line (main.py passes
  ml_collections' override values); None treats every differing
  FROM_CHECKPOINT field as given. Returns a copy; a workdir without a saved
  config (converted weights) returns ``config`` unchanged.
  """
  saved = checkpointing.saved_config(workdir)
  if saved is None:
    return config
  given, kept = _flat(config), _flat(saved)
  differences = architecture_differences(kept, given)
  if differences:
    variant = saved.get('variant', '?')
    raise checkpointing.CheckpointMismatchError(
        f'the checkpoints in {workdir} were trained as variant {variant!r} '
        f'with another architecture: {"; ".join(differences)}',
        f'pass --config=configs/cost.py:{variant} with the overrides the run '
        'was trained with, or another --workdir',
    )
  config = config.copy_and_resolve_references()
  for key in FROM_CHECKPOINT:
    if key not in kept or given.get(key) == kept[key]:
      continue
    if overrides is None or key in overrides:
      logging.warning(
          '%s = %r as given; the run was trained with %r',
          key,
          given.get(key),
          kept[key],
      )
      continue
    section, field = key.split('.')
    config[section][field] = kept[key]
    logging.info("%s = %r from the checkpoint's config", key, kept[key])
  return config
