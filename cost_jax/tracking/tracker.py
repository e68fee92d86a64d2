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

import os

import numpy as np

from cost_jax import run_config
from cost_jax.weights import (
    check_shapes,
    checkpoint_info,
    checkpoint_steps,
    load_converted_variables,
    load_weights,
    restore_variables,
)
from cost_jax.tracking.engine import Engine, check_frame

# The weight readers live in cost_jax.weights; re-exported for the Python API.
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
    frame = check_frame(frame_rgb)
    out, geometry = self._step(frame, self.engine.step)
    out = self.engine.redetect(
        frame, self._state, out, geometry, (self._template, self._text)
    )
    return self.engine.update(self._state, out[:4], out[4]), float(out[4])

  def track_with_scores(self, frame_rgb):
    """`track`, and what the tracker considered: -> (box, score, candidates).

    ``candidates``: {'scores' (N,) windowed scores (the map the argmax
    picks from, row-major over the G x G grid), 'centres' (N, 2) image x, y
    of each candidate's box, 'region' (cx, cy, side) of the searched square,
    'chosen' index} of the first search (a re-detection, track.redetect_tiles,
    may then pick another box).  Its own jitted step, compiled on the first call.
    """
    frame = check_frame(frame_rgb)
    out, geometry = self._step(frame, self.engine.step_with_scores)
    n = (out.shape[0] - 5) // 3
    scores = out[5 : 5 + n]
    candidates = {
        'scores': scores,
        'centres': out[5 + n :].reshape(2, n).T,
        'region': geometry[:3].astype(np.float64),
        'chosen': int(np.argmax(scores)),
    }
    out = self.engine.redetect(
        frame, self._state, out[:5], geometry, (self._template, self._text)
    )
    box = self.engine.update(self._state, out[:4], out[4])
    return box, float(out[4]), candidates

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
