"""Where the tracker looks: a motion-predicted search centre and re-detection.

TransT (and the paper's tracker) searches each frame around the last box,
4x its size: a target that moves more than about two of its sides between
frames leaves the search region and is lost for good. Small objects often
do (the paper's high-speed subset). Two settings of ``config.track``, both
off in TransT's configuration, address this:

* ``motion='velocity'``: the search is centred on the last centre plus the
  last displacement (a constant-velocity prediction), taken only from a
  frame whose chosen candidate scored at least ``lost_score``;
* ``redetect_tiles=n`` (> 1): when the chosen candidate scores below
  ``lost_score``, the same frame is searched again with n x n crops of the
  same size tiled around the search centre, ``redetect_stride`` of the
  crop's side apart, in one batched network call; the best-scoring
  candidate over all tiles (the first crop included) wins.

Each tile is scored like the normal search, with its own Hanning window, so
the windowed scores are comparable across tiles.
"""

from __future__ import annotations

import numpy as np

__all__ = ['tile_offsets', 'redetect', 'windowed_scores', 'MOTIONS']

MOTIONS = ('none', 'velocity')


def windowed_scores(scores, window, window_influence):
  """TransT's penalised scores ``p*(1-wi) + window*wi``: (B, N)."""
  return scores * (1.0 - window_influence) + window[None, :] * window_influence


def tile_offsets(tiles: int, stride: float) -> np.ndarray:
  """(tiles**2 - 1, 2) offsets of the extra crops in units of the crop side,
  row-major, without the centre (the crop already searched)."""
  r = (np.arange(tiles) - (tiles - 1) / 2) * stride
  grid = np.stack(np.meshgrid(r, r, indexing='xy'), axis=-1).reshape(-1, 2)
  return grid[np.any(grid != 0, axis=1)]


def redetect(engine, frame, state, first, caches) -> np.ndarray:
  """The best of the normal search's row and the tiled crops' rows.

  ``first``: (row (5,), geometry (5,)) of the normal search; ``caches``: the
  sequence's batch-1 (template, text) device caches. Returns a (5,) row: cx,
  cy, w, h, score. Rows are compared by their windowed score, as candidates
  within one search are: a target seen whole near a tile's centre beats one
  cut by its edge.
  """
  offsets = engine.redetect_offsets
  side = engine.search_side(state)
  pairs = [engine.search_crop(frame, state, o * side) for o in offsets]
  crops, geometry = (np.stack(x) for x in zip(*pairs))
  template, text = engine.batch_caches(*caches, len(offsets))
  out = np.asarray(
      engine.step(engine.variables, crops, template, text, geometry)
  )
  rows = np.concatenate([first[0][None], out])
  geometry = np.concatenate([first[1][None], geometry])
  return rows[np.argmax(_windowed(rows, geometry, engine.window_influence))]


def _windowed(rows, geometry, window_influence):
  """TransT's penalised score of each row's box in its own search square:
  the Hanning window taken at the box centre's position in the square."""
  half = geometry[:, 2:3] / 2
  u = (rows[:, :2] - geometry[:, :2] + half) / geometry[:, 2:3]
  window = np.prod(0.5 - 0.5 * np.cos(2 * np.pi * np.clip(u, 0, 1)), axis=1)
  return windowed_scores(rows[None, :, 4], window, window_influence)[0]
