"""Pixels for the synthetic videos: textured background, shapes with motion blur, occluder.

`render_frames(scene)` yields uint8 BGR frames.  All randomness comes from
`scene.render_seed`, so a scene always renders to the same pixels.
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from input_pipeline.synth_scene import CAMERA_MARGIN, Scene, Track, shape_polygon

_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision
_EXPOSURE = 0.5  # fraction of the inter-frame motion smeared by motion blur


def make_background(
    rng: np.random.Generator, width: int, height: int
) -> np.ndarray:
  """A desaturated, textured, cluttered background (uint8 BGR, height x width)."""
  blobs = rng.uniform(50, 190, size=(6, 8, 3)).astype(np.float32)
  base = cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC)
  grey = base.mean(axis=2, keepdims=True)
  base = 0.35 * base + 0.65 * grey
  fine = rng.normal(0, 10, size=(height // 4 + 1, width // 4 + 1)).astype(
      np.float32
  )
  base += cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR)[
      ..., None
  ]
  canvas = np.clip(base, 0, 255).astype(np.uint8)
  _draw_clutter(rng, canvas)
  return canvas


def _draw_clutter(
    rng: np.random.Generator, canvas: np.ndarray, count: int = 24
):
  """Low-contrast lines, rectangles and blobs: structure that is not a target."""
  h, w = canvas.shape[:2]
  for _ in range(count):
    tone = int(rng.integers(40, 200))
    colour = tuple(
        int(np.clip(tone + d, 0, 255)) for d in rng.integers(-20, 21, size=3)
    )
    kind = rng.integers(3)
    p = (int(rng.integers(w)), int(rng.integers(h)))
    if kind == 0:
      q = (int(rng.integers(w)), int(rng.integers(h)))
      cv2.line(canvas, p, q, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    elif kind == 1:
      q = (p[0] + int(rng.integers(10, 60)), p[1] + int(rng.integers(10, 60)))
      cv2.rectangle(canvas, p, q, colour, int(rng.choice([-1, 1, 2])))
    else:
      axes = (int(rng.integers(3, 15)), int(rng.integers(3, 15)))
      cv2.ellipse(
          canvas,
          p,
          axes,
          float(rng.uniform(0, 180)),
          0,
          360,
          colour,
          -1,
          cv2.LINE_AA,
      )


def _blur_offsets(track: Track, t: int, blur: bool) -> np.ndarray:
  """Sub-frame displacements (K,2) of the object during the exposure, centred on frame t."""
  if not blur or t == 0:
    return np.zeros((1, 2))
  step = track.centres[t] - track.centres[t - 1]
  k = int(
      np.clip(
          np.ceil(
              _EXPOSURE * np.linalg.norm(step) / max(1.0, track.sizes[t] / 3)
          ),
          1,
          8,
      )
  )
  return (
      np.linspace(-0.5, 0.5, k)[:, None] * (_EXPOSURE * step)
      if k > 1
      else np.zeros((1, 2))
  )


def draw_object(frame: np.ndarray, track: Track, t: int, blur: bool) -> None:
  """Alpha-blends `track`'s shape (smeared over the exposure if `blur`) into float `frame`."""
  h, w = frame.shape[:2]
  shape = (
      shape_polygon(track.shape, track.sizes[t], track.angles[t])
      + track.centres[t]
  )
  polys = [shape + off for off in _blur_offsets(track, t, blur)]
  pts = np.concatenate(polys)
  x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - 1, 0)
  x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 1, (w, h))
  if x1 <= x0 or y1 <= y0:
    return
  acc = np.zeros((y1 - y0, x1 - x0), np.float32)
  mask = np.empty((y1 - y0, x1 - x0), np.uint8)
  scale = 1 << _SUBPIXEL_BITS
  for (
      poly
  ) in (
      polys
  ):  # pixel i covers [i, i+1): its centre i + 0.5 is cv2's coordinate i
    mask.fill(0)
    fixed = np.round((poly - (x0 + 0.5, y0 + 0.5)) * scale).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 255, cv2.LINE_AA, shift=_SUBPIXEL_BITS)
    acc += mask
  alpha = (acc / (255.0 * len(polys)))[..., None]
  roi = frame[y0:y1, x0:x1]
  roi += (np.asarray(track.bgr_at(t), np.float32) - roi) * alpha


def draw_occluder(
    frame: np.ndarray, rect: np.ndarray, colour: tuple[float, ...]
) -> None:
  """Fills the integer rect x,y,w,h with a flat colour and a darker rim."""
  h, w = frame.shape[:2]
  x, y, rw, rh = (int(v) for v in rect)
  x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + rw, w), min(y + rh, h)
  if x1 <= x0 or y1 <= y0:
    return
  frame[y0:y1, x0:x1] = np.asarray(colour, np.float32) * 0.7
  if x1 - x0 > 4 and y1 - y0 > 4:
    frame[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = colour


def render_frames(scene: Scene) -> Iterator[np.ndarray]:
  """Yields the video's frames (uint8 BGR, height x width)."""
  rng = np.random.default_rng(scene.render_seed)
  w, h = scene.width, scene.height
  background = make_background(
      rng, w + 2 * CAMERA_MARGIN, h + 2 * CAMERA_MARGIN
  )
  noise = [
      3 * rng.standard_normal((h, w, 3), dtype=np.float32) for _ in range(3)
  ]
  occluder_colour = tuple(float(v) for v in rng.integers(60, 160, size=3))
  for t in range(scene.num_frames):
    cx, cy = scene.camera[t]
    frame = background[cy : cy + h, cx : cx + w].astype(np.float32)
    for track in scene.distractors + [scene.target]:
      draw_object(frame, track, t, scene.high_speed)
    if scene.occluder is not None:
      draw_occluder(frame, scene.occluder[t], occluder_colour)
    if scene.gain[t] != 1:
      frame *= scene.gain[t]
    frame += noise[t % len(noise)]
    yield np.clip(frame, 0, 255, out=frame).astype(np.uint8)
