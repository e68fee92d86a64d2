"""Weights of a trained or converted model, for tracking and export.

`restore_variables` reads params + batch_stats of one checkpoint step of a
run (orbax partial restore: not the optimizer state; the newest readable step
by default, on any device count); `load_converted_variables` reads a whole
model converted by `cost_jax.convert`; `load_weights` picks one of them as
`--mode=evaluate/track` do; `check_shapes` is the shape check they share.
Paths are etils.epath paths: a run in a bucket (gs://...) reads the same.
Training's own save/restore of the full state is `cost_jax.checkpointing`.
"""

from __future__ import annotations

import functools
import json
import os

from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp

from cost_jax import checkpointing
from cost_jax import errors
from cost_jax.convert import store
from cost_jax.models import cost as cost_lib
from cost_jax.models import factory

__all__ = [
    'restore_variables',
    'restore_step',
    'load_converted_variables',
    'load_weights',
    'check_shapes',
    'checkpoint_steps',
    'checkpoint_info',
]


def _variables_path(tree, path=()):
  """Keys leading to the first mapping holding 'params' in a checkpoint tree (depth first)."""
  if not isinstance(tree, dict):
    return None
  if 'params' in tree:
    return path
  for key, value in tree.items():
    found = _variables_path(value, path + (key,))
    if found is not None:
      return found
  return None


def checkpoint_steps(workdir) -> list:
  """The finished checkpoint steps of ``WORKDIR/checkpoints``, sorted ([] if none)."""
  root = checkpointing.checkpoints_dir(workdir)
  return (
      sorted(ocp.CheckpointManager(root).all_steps()) if root.is_dir() else []
  )


def checkpoint_info(workdir, step: int) -> str:
  """How results name the weights of checkpoint ``step`` (their manifest's 'weights')."""
  return f'checkpoint:{checkpointing.checkpoints_dir(workdir)}@{step}'


def _orbax_restore(workdir):
  """Restores params + batch_stats of the newest readable checkpoint of ``workdir`` as numpy.

  Unreadable steps are named in a warning and skipped, never changed
  (`cost_jax.checkpointing.newest_readable`).  Returns (variables, step).
  """
  root = checkpointing.checkpoints_dir(workdir)
  if not root.is_dir():
    raise FileNotFoundError(
        f'no checkpoints folder {root}: train first (--mode=train with '
        'this --workdir) or use converted weights'
    )
  steps = checkpoint_steps(workdir)
  if not steps:
    raise FileNotFoundError(f'{root} holds no finished checkpoint')
  return checkpointing.newest_readable(
      steps, lambda step: restore_step(root / str(step)), str(root)
  )


def restore_step(step_dir):
  """params + batch_stats of one step folder as numpy.

  Reads only those two collections (orbax partial restore: not the optimizer
  state) from whichever pytree item holds them (cost_jax.checkpointing saves
  them in the 'state' item), on any device count.
  """
  step_dir = epath.Path(step_dir)
  items = [step_dir] + sorted(step_dir.iterdir())
  checkpointer = ocp.PyTreeCheckpointer()
  for path in items:
    if not (path / '_METADATA').is_file():
      continue
    meta = checkpointer.metadata(path)
    tree = getattr(meta, 'item_metadata', meta)
    tree = getattr(tree, 'tree', tree)
    keys = _variables_path(tree)
    if keys is None:
      continue
    node = tree
    for k in keys:
      node = node[k]
    wanted = {c: node[c] for c in ('params', 'batch_stats') if c in node}
    for k in reversed(keys):
      wanted = {k: wanted}
    restore_args = jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray), wanted
    )
    restored = checkpointer.restore(
        path,
        args=ocp.args.PyTreeRestore(
            item=wanted, restore_args=restore_args, partial_restore=True
        ),
    )
    for k in keys:
      restored = restored[k]
    return restored
  raise checkpointing.UnreadableCheckpointError(
      f'checkpoint {step_dir} has no readable item holding model ' '"params"'
  )


def restore_variables(config, workdir, step=None):
  """({'params', 'batch_stats'}, description) from checkpoint ``step`` in ``workdir``
  (default: the newest readable one).

  The shapes are checked against ``config`` (ValueError naming the first
  mismatching parameters).
  """
  if step is None:
    variables, step = _orbax_restore(workdir)
  else:
    variables = restore_step(checkpointing.checkpoints_dir(workdir) / str(step))
  variables = {
      k: variables[k] for k in ('params', 'batch_stats') if k in variables
  }
  check_shapes(
      config,
      variables,
      f'checkpoint step {step} in {checkpointing.checkpoints_dir(workdir)}',
  )
  return variables, checkpoint_info(workdir, step)


def load_converted_variables(config, path):
  """Variables from a converted weights file (``cost_jax.convert``, safetensors + sidecar).

  Tracking needs a complete model: a file that covers only part of it (e.g.
  the TransT visual branch for COST training) is refused.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(
        f'converted weights {path} not found (see checkpoints/README.md '
        'for how to convert TransT / COST weights)'
    )
  side = store.sidecar_path(path)
  meta = {}
  if os.path.exists(side):
    with open(side, encoding='utf-8') as f:
      meta = json.load(f)
  partial = [c for c in meta.get('covers', ['']) if c] + list(
      meta.get('left_to_init', [])
  )
  if partial:
    raise ValueError(
        f'{path} covers only part of the model ({", ".join(partial[:4])}...): it '
        'initialises training; track with a trained checkpoint or a complete '
        'converted model (e.g. TransT with the no_lb variant)'
    )
  model, spec = factory.create_model(config)
  target = jax.tree.map(
      lambda s: np.zeros(s.shape, s.dtype), factory.variable_shapes(model, spec)
  )
  variables = store.load_converted(path, target)
  return {k: variables[k] for k in ('params', 'batch_stats') if k in variables}


def load_weights(config, workdir):
  """Variables + description: the latest checkpoint in ``workdir``, else the converted file
  named by ``config.track.weights`` or ``config.train.init_transt``."""
  converted = config.track.weights or config.train.init_transt
  root = checkpointing.checkpoints_dir(workdir)
  if root.is_dir() and any(root.iterdir()):
    return restore_variables(config, workdir)
  if converted:
    return (
        load_converted_variables(config, converted),
        f'converted:{os.path.abspath(converted)}',
    )
  raise errors.NotFound(
      f'no weights: {root} holds no checkpoint and no converted weights are configured',
      'train first (--mode=train with this --workdir) or set --config.track.weights=FILE '
      '(weights converted by cost_jax.convert, e.g. TransT for the no_lb variant)',
  )


@functools.lru_cache(maxsize=8)
def _expected_shapes(spec) -> dict:
  """{'[params][...]': shape} of a freshly initialised model (jax.eval_shape, cached)."""
  expected = factory.variable_shapes(cost_lib.COST(spec), spec)
  return {
      jax.tree_util.keystr(k): tuple(v.shape)
      for k, v in jax.tree_util.tree_flatten_with_path(
          {c: expected[c] for c in ('params', 'batch_stats') if c in expected}
      )[0]
  }


def check_shapes(config, variables, source: str) -> None:
  """Raises errors.InvalidValue naming the first mismatching parameters of ``variables``."""
  want = _expected_shapes(factory.create_model(config)[1])
  got = {
      jax.tree_util.keystr(k): tuple(np.shape(v))
      for k, v in jax.tree_util.tree_flatten_with_path(variables)[0]
  }
  problems = [f'missing {k}' for k in want if k not in got]
  problems += [f'unexpected {k}' for k in got if k not in want]
  problems += [
      f'{k}: {got[k]} vs {want[k]}'
      for k in want
      if k in got and got[k] != want[k]
  ]
  if 'params' not in variables:
    problems.insert(0, "no 'params'")
  if problems:
    raise errors.InvalidValue(
        f'{source} does not fit config {config.variant!r} ({len(problems)} problems, e.g. '
        f'{"; ".join(problems[:5])})',
        'pass the --config variant the weights were trained with, or another --workdir',
    )
