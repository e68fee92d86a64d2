"""What a tracked frame shows: the box, its score and the description
(`annotate`) and, with ``--show_scores``, what the tracker considered.

Every candidate of the head (the G x G grid: 21 x 21 for COST's tokens, 20 x
20 for ``visual400``, 32 x 32 for TransT) proposes a box and has a score
after TransT's Hanning window (``p*(1-wi) + window*wi``, what the argmax
picks from).  The overlay draws

* a dot at each candidate's box centre in the image, coloured by its
  windowed score (blue low, red high; lowest drawn first), the chosen one
  ringed in white;
* the searched square (the search crop's footprint) as a thin outline;
* the G x G map itself in the top-right corner (bottom-right when the
  searched square is in the top half), chosen cell outlined;
* the score range, which the colours span (min-max per frame).

Tracked twice, with and without a description, the overlays show what the
language branch changes.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["annotate", "draw_candidates"]

_WHITE = (255, 255, 255)
_BOX = (0, 255, 0)  # BGR: the tracked box
_REGION = (200, 200, 0)  # BGR cyan-ish


def _colours(scores: np.ndarray) -> tuple[np.ndarray, float, float]:
  """(N, 3) BGR JET colours of min-max normalised scores, min, max."""
  lo, hi = float(scores.min()), float(scores.max())
  t = (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)
  levels = np.round(t * 255).astype(np.uint8)[:, None]
  return cv2.applyColorMap(levels, cv2.COLORMAP_JET)[:, 0], lo, hi


def _draw_map(image, colours, side: int, chosen: int, away_from) -> None:
  """The G x G map (row-major), nearest-neighbour, in the right corner (top or bottom)
  farther from the point ``away_from`` (the searched square's centre)."""
  grid = int(round(len(colours) ** 0.5))
  cell = side // grid
  if grid * grid != len(colours) or cell < 1:
    return
  tile = np.repeat(np.repeat(colours.reshape(grid, grid, 3), cell, 0), cell, 1)
  h, w = tile.shape[:2]
  if h + 2 > image.shape[0] or w + 2 > image.shape[1]:
    return
  x0 = image.shape[1] - w - 1
  y0 = 1 if away_from[1] >= image.shape[0] / 2 else image.shape[0] - h - 1
  image[y0 : y0 + h, x0 : x0 + w] = tile
  r, c = divmod(chosen, grid)
  cv2.rectangle(
      image,
      (x0 + c * cell, y0 + r * cell),
      (x0 + (c + 1) * cell - 1, y0 + (r + 1) * cell - 1),
      _WHITE,
      1,
  )


def draw_candidates(image: np.ndarray, candidates: dict) -> np.ndarray:
  """Draws ``Tracker.track_with_scores``'s candidates on a BGR image (in place)."""
  scores = np.asarray(candidates["scores"], np.float64)
  centres = np.asarray(candidates["centres"], np.float64)
  colours, lo, hi = _colours(scores)
  cx, cy, side = candidates["region"]
  cv2.rectangle(
      image,
      (int(round(cx - side / 2)), int(round(cy - side / 2))),
      (int(round(cx + side / 2)), int(round(cy + side / 2))),
      _REGION,
      1,
  )
  grid = max(1.0, len(scores) ** 0.5)
  radius = int(max(1, min(4, round(side / grid / 3))))
  finite = np.all(np.isfinite(centres), axis=1)
  for i in np.argsort(scores, kind="stable"):
    if finite[i]:
      centre = (int(round(centres[i, 0])), int(round(centres[i, 1])))
      cv2.circle(
          image,
          centre,
          radius,
          tuple(int(v) for v in colours[i]),
          -1,
          cv2.LINE_AA,
      )
  chosen = int(candidates["chosen"])
  if finite[chosen]:
    centre = (int(round(centres[chosen, 0])), int(round(centres[chosen, 1])))
    cv2.circle(image, centre, radius + 2, _WHITE, 1, cv2.LINE_AA)
  _draw_map(image, colours, min(image.shape[:2]) // 4, chosen, (cx, cy))
  cv2.putText(
      image,
      f"windowed scores {lo:.2f}-{hi:.2f}",
      (4, image.shape[0] - 5),
      cv2.FONT_HERSHEY_SIMPLEX,
      0.35,
      _WHITE,
      1,
      cv2.LINE_AA,
  )
  return image


def annotate(
    frame_rgb, box, score, index: int, description: str, candidates=None
) -> np.ndarray:
  """A BGR copy of the frame with the box, score, frame index and description drawn
  (and ``candidates`` of `Tracker.track_with_scores`, `draw_candidates`).
  """
  image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
  if candidates is not None:
    draw_candidates(image, candidates)
  x, y, w, h = (int(round(v)) for v in box)
  cv2.rectangle(image, (x, y), (x + w, y + h), _BOX, 2)
  cv2.putText(
      image,
      f"{score:.2f}",
      (x, max(y - 4, 10)),
      cv2.FONT_HERSHEY_SIMPLEX,
      0.4,
      _BOX,
      1,
      cv2.LINE_AA,
  )
  lines = [f"#{index}"] + ([description] if description else [])
  for k, line in enumerate(lines):
    cv2.putText(
        image,
        line,
        (4, 14 + 14 * k),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.4,
        _WHITE,
        1,
        cv2.LINE_AA,
    )
  return image
