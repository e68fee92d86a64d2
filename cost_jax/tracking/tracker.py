"""`Tracker`: track one object in a stream of frames (Python API of the online tracker).

    from cost_jax.tracking.tracker import Tracker   # or: from cost_jax import Tracker
    tracker = Tracker.from_workdir(config, 'runs/demo')
    tracker.initialize(first_rgb, (x, y, w, h), 'the red car on the left')
    for frame in frames:
        box, score = tracker.track(frame)   # x, y, w, h (float64), probability in [0, 1]

Frames are HxWx3 uint8 RGB.  The algorithm (TransT's, any candidate grid) is
in `cost_jax.tracking.engine`; weights come from an orbax checkpoint of a
training run (`from_workdir`) or a converted file (`from_converted`).
"""

from __future__ import annotations

import functools
import json
import os

import jax
import numpy as np

from cost_jax import errors
from cost_jax import run_config
from cost_jax.models import cost as cost_lib
from cost_jax.models import factory
from cost_jax.tracking.engine import Engine, check_frame

__all__ = [
    'Tracker',
    'restore_variables',
    'load_converted_variables',
    'load_weights',
    'check_shapes',
    'checkpoint_steps',
    'checkpoint_info',
]


class Tracker:
  """Single-stream tracker: `initialize` once, then `track` every frame."""

  def __init__(
      self,
      config,
      variables,
      *,
      forward=None,
      weights_info: str = '',
      engine=None,
  ):
    """``forward`` optionally replaces the network inside the jitted step (tests);
    ``engine`` reuses an existing `Engine` (then ``variables`` may be None)."""
    self.engine = engine or Engine(config, variables, forward=forward)
    self.config = config
    self.weights_info = weights_info
    self._state = None
    self._template = self._text = None

  @classmethod
  def from_workdir(cls, config, workdir, **kwargs) -> 'Tracker':
    """The latest orbax checkpoint (params + batch_stats) of a training run in
    ``workdir``, with its saved config's tracker settings where ``config``
    gives the same values (cost_jax.run_config)."""
    config = run_config.with_checkpoint_config(config, workdir)
    variables, info = restore_variables(config, workdir)
    return cls(config, variables, weights_info=info, **kwargs)

  @classmethod
  def from_converted(cls, config, path, **kwargs) -> 'Tracker':
    """Weights converted by ``cost_jax.convert`` (e.g. the official TransT for ``no_lb``)."""
    return cls(
        config,
        load_converted_variables(config, path),
        weights_info=f'converted:{os.path.abspath(path)}',
        **kwargs,
    )

  @property
  def grid_side(self) -> int:
    return self.engine.grid_side

  def initialize(
      self, frame_rgb, box_xywh, description: str = '', *, tokens=None
  ) -> None:
    """Crops the 2x template around ``box_xywh``; encodes it and the description once.

    ``tokens``: pre-tokenised (ids, mask) int32 (1, T) instead of ``description``.
    """
    if tokens is None:
      tokens = self.engine.tokenize(description)
    self._state, z = self.engine.start(frame_rgb, box_xywh)
    self._template, self._text = self.engine.encode(z, tokens)

  def track(self, frame_rgb):
    """-> (box x, y, w, h float64 (4,), score float): one jitted step on cached features."""
    out, _ = self._step(frame_rgb, self.engine.step)
    return self.engine.update(self._state, out[:4]), float(out[4])

  def track_with_scores(self, frame_rgb):
    """`track`, and what the tracker considered: -> (box, score, candidates).

    ``candidates``: {'scores' (N,) windowed scores (the map the argmax
    picks from, row-major over the G x G grid), 'centres' (N, 2) image x, y
    of each candidate's box, 'region' (cx, cy, side) of the searched square,
    'chosen' index}.  Its own jitted step, compiled on the first call.
    """
    out, geometry = self._step(frame_rgb, self.engine.step_with_scores)
    n = (out.shape[0] - 5) // 3
    scores = out[5 : 5 + n]
    candidates = {
        'scores': scores,
        'centres': out[5 + n :].reshape(2, n).T,
        'region': geometry[:3].astype(np.float64),
        'chosen': int(np.argmax(scores)),
    }
    return self.engine.update(self._state, out[:4]), float(out[4]), candidates

  def _step(self, frame_rgb, step):
    """(one row of ``step``'s output as numpy, the search geometry) for one frame."""
    if self._state is None:
      raise RuntimeError(
          'call Tracker.initialize(first_frame, box, description) before track'
      )
    frame = check_frame(frame_rgb)
    crop, geometry = self.engine.search_crop(frame, self._state)
    out = step(
        self.engine.variables,
        crop[None],
        self._template,
        self._text,
        geometry[None],
    )
    return np.asarray(out)[0], geometry

  @property
  def state_box(self):
    """The current x, y, w, h box (None before `initialize`)."""
    return None if self._state is None else self._state.box


# --- weights -------------------------------------------------------------------------------
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


def _checkpoints_root(workdir) -> str:
  return os.path.abspath(os.path.join(os.fspath(workdir), 'checkpoints'))


def checkpoint_steps(workdir) -> list:
  """The finished checkpoint steps of ``WORKDIR/checkpoints``, sorted ([] if none)."""
  import orbax.checkpoint as ocp

  root = _checkpoints_root(workdir)
  return (
      sorted(ocp.CheckpointManager(root).all_steps())
      if os.path.isdir(root)
      else []
  )


def checkpoint_info(workdir, step: int) -> str:
  """How results name the weights of checkpoint ``step`` (their manifest's 'weights')."""
  return f'checkpoint:{_checkpoints_root(workdir)}@{step}'


def _orbax_restore(workdir):
  """Restores params + batch_stats of the newest readable checkpoint of ``workdir`` as numpy.

  Unreadable steps are named in a warning and skipped, never changed
  (`cost_jax.checkpointing.newest_readable`).  Returns (variables, step).
  """
  from cost_jax import checkpointing

  root = _checkpoints_root(workdir)
  if not os.path.isdir(root):
    raise FileNotFoundError(
        f'no checkpoints folder {root}: train first (--mode=train with '
        'this --workdir) or use converted weights'
    )
  steps = checkpoint_steps(workdir)
  if not steps:
    raise FileNotFoundError(f'{root} holds no finished checkpoint')
  return checkpointing.newest_readable(
      steps, lambda step: _restore_step(os.path.join(root, str(step))), root
  )


def _restore_step(step_dir):
  """params + batch_stats of one step folder as numpy.

  Reads only those two collections (orbax partial restore: not the optimizer
  state) from whichever pytree item holds them (cost_jax.checkpointing saves
  them in the 'state' item), on any device count.
  """
  import orbax.checkpoint as ocp
  from cost_jax.checkpointing import UnreadableCheckpointError

  items = [''] + sorted(os.listdir(step_dir))
  checkpointer = ocp.PyTreeCheckpointer()
  for item in items:
    path = os.path.join(step_dir, item)
    if not os.path.isfile(os.path.join(path, '_METADATA')):
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
  raise UnreadableCheckpointError(
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
    variables = _restore_step(
        os.path.join(_checkpoints_root(workdir), str(step))
    )
  variables = {
      k: variables[k] for k in ('params', 'batch_stats') if k in variables
  }
  check_shapes(
      config,
      variables,
      f'checkpoint step {step} in {_checkpoints_root(workdir)}',
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
  from cost_jax.convert import store

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
  root = os.path.join(os.fspath(workdir), 'checkpoints')
  if os.path.isdir(root) and os.listdir(root):
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
