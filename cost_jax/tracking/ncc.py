"""A classical baseline: normalised cross-correlation template matching.

The first frame's box is the template. On each later frame the template is
matched (OpenCV `TM_CCOEFF_NORMED`, colour) inside a window of
3 * max(w, h) + 10 px around the last box, and the box moves to the best
match at its initial size. It learns nothing, so a learned tracker that does
not beat it on a benchmark has not learned to track there. An unreadable
frame keeps the last box.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Optional

import cv2
import numpy as np

NAME = 'ncc'
DESCRIPTION = (
    'OpenCV TM_CCOEFF_NORMED template matching: first-frame '
    'template, window 3*max(w,h)+10 px around the last box, '
    'fixed size'
)


def _crop_template(frame: np.ndarray, box) -> np.ndarray:
  """The box's pixels (at least 1x1, clipped to the frame)."""
  h_img, w_img = frame.shape[:2]
  x, y, w, h = box
  x0 = int(np.clip(round(x), 0, w_img - 1))
  y0 = int(np.clip(round(y), 0, h_img - 1))
  x1 = int(np.clip(round(x + max(w, 1)), x0 + 1, w_img))
  y1 = int(np.clip(round(y + max(h, 1)), y0 + 1, h_img))
  return frame[y0:y1, x0:x1]


class NCCTracker:
  """Tracks one sequence: `init(frame, box)`, then `update(frame)` -> box."""

  def __init__(self, window_factor: float = 3.0, window_margin: float = 10.0):
    self.window_factor = window_factor
    self.window_margin = window_margin
    self.template = None
    self.box = None

  def init(self, frame: np.ndarray, box) -> None:
    self.box = np.asarray(box, np.float64).copy()
    self.template = _crop_template(frame, self.box)

  def update(self, frame: Optional[np.ndarray]) -> np.ndarray:
    """The new box (x, y, w, h); `None` (an unreadable frame) keeps the last."""
    if frame is None:
      return self.box.copy()
    th, tw = self.template.shape[:2]
    h_img, w_img = frame.shape[:2]
    side = self.window_factor * max(self.box[2], self.box[3])
    side += self.window_margin
    cx = self.box[0] + self.box[2] / 2
    cy = self.box[1] + self.box[3] / 2
    x0 = int(np.clip(round(cx - side / 2), 0, max(w_img - tw, 0)))
    y0 = int(np.clip(round(cy - side / 2), 0, max(h_img - th, 0)))
    x1 = int(np.clip(round(cx + side / 2), x0 + tw, w_img))
    y1 = int(np.clip(round(cy + side / 2), y0 + th, h_img))
    window = frame[y0:y1, x0:x1]
    if window.shape[0] < th or window.shape[1] < tw:
      return self.box.copy()
    scores = cv2.matchTemplate(window, self.template, cv2.TM_CCOEFF_NORMED)
    scores = np.nan_to_num(scores, nan=-1.0)
    _, _, _, (mx, my) = cv2.minMaxLoc(scores)
    # The template was cut at the rounded box corner: keep the sub-pixel
    # offset of the initial box so a still target keeps its exact box.
    offset = self.box[:2] - np.round(self.box[:2])
    self.box[:2] = np.array([x0 + mx, y0 + my], np.float64) + offset
    return self.box.copy()


def track(
    frames: Iterable[Optional[np.ndarray]], init_box
) -> tuple[np.ndarray, np.ndarray]:
  """Boxes (N, 4) and seconds per frame (N,) over `frames` (arrays; None
  for an unreadable frame; the first must be readable)."""
  tracker = NCCTracker()
  boxes, times = [], []
  for i, frame in enumerate(frames):
    start = time.perf_counter()
    if i == 0:
      tracker.init(frame, init_box)
      box = np.asarray(init_box, np.float64)
    else:
      box = tracker.update(frame)
    times.append(time.perf_counter() - start)
    boxes.append(box)
  return np.stack(boxes), np.asarray(times)


def track_paths(
    paths, init_box, read: Callable[[str], Optional[np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
  """`track` over frame files; `read` returns None for an unreadable one."""
  return track((read(p) for p in paths), init_box)
