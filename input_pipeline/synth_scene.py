"""Scene sampling for the synthetic VL small-object videos (geometry and labels, no pixels).

A scene is a target and look-alike distractors (simple shapes, ≈5-25 px),
moving over a camera-shifted background, with an occluder that may pass over
the target and a trajectory that may leave the view.  Everything here is a
pure function of the numpy Generator it is given, so a seed fixes the video.
Positions are continuous pixel coordinates: pixel i covers [i, i+1).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SHAPES = ('circle', 'square', 'triangle', 'diamond', 'cross', 'star', 'hexagon')
COLOURS = {  # BGR, saturated so that colour is what tells objects apart
    'red': (40, 40, 230),
    'green': (60, 200, 60),
    'blue': (230, 90, 30),
    'yellow': (40, 230, 240),
    'orange': (30, 140, 255),
    'purple': (200, 50, 150),
    'cyan': (230, 230, 40),
    'pink': (200, 150, 255),
    'white': (245, 245, 245),
}
DIRECTIONS = {
    'left': (-1.0, 0.0),
    'right': (1.0, 0.0),
    'up': (0.0, -1.0),
    'down': (0.0, 1.0),
}
DISTRACTOR_MODES = ('color', 'shape', 'mixed', 'none', 'language')
GREY = (128, 128, 128)  # BGR of a target whose colour is not shown yet
CAMERA_MARGIN = 48  # background border (px) the camera pans over


@dataclasses.dataclass(frozen=True)
class SynthOptions:
  """Generator options (the CLI flags of `input_pipeline.synthetic`)."""

  frames: int = 60
  width: int = 320
  height: int = 240
  distractors: str = 'mixed'  # color | shape | mixed | none
  num_distractors: tuple[int, int] = (2, 4)  # inclusive range
  size_range: tuple[float, float] = (6.0, 20.0)  # target side sqrt(w*h), px
  normal_speed: tuple[float, float] = (
      0.1,
      0.45,
  )  # relative speed (Eq. 1) per frame
  high_speed: tuple[float, float] = (2.0, 5.0)
  occlusion_prob: float = 0.35
  out_of_view_prob: float = 0.35
  camera_jump_prob: float = 0.3
  rotation_prob: float = 0.3
  illumination_prob: float = 0.25
  # The target is drawn grey in its first `grey_frames` frames (in a
  # `grey_fraction` of the videos): the template then shows its shape but
  # not its colour, which only the description names. 'language' mode
  # (colour distractors, all of the target's shape) grey-starts every video,
  # for at least one frame.
  grey_frames: int = 0
  grey_fraction: float = 1.0

  def __post_init__(self):
    if self.distractors not in DISTRACTOR_MODES:
      raise ValueError(
          f'distractors must be one of {DISTRACTOR_MODES}, got '
          f'{self.distractors!r}'
      )
    if self.frames < 2:
      raise ValueError(f'need at least 2 frames, got {self.frames}')
    if min(self.width, self.height) < 2.5 * self.size_range[1]:
      raise ValueError(
          f'frame {self.width}x{self.height} is too small for targets up to '
          f'{self.size_range[1]} px; use at least '
          f'{int(2.5 * self.size_range[1])} px per side'
      )


@dataclasses.dataclass
class Track:
  """One object's appearance and per-frame centre (F,2), side (F,) and angle (F,)."""

  shape: str
  colour: str
  centres: np.ndarray
  sizes: np.ndarray
  angles: np.ndarray
  grey_until: int = 0  # frames [0, grey_until) are drawn grey

  @property
  def bgr(self) -> tuple[int, int, int]:
    return COLOURS[self.colour]

  def bgr_at(self, t: int) -> tuple[int, int, int]:
    return GREY if t < self.grey_until else self.bgr


@dataclasses.dataclass
class Scene:
  """Everything needed to render and annotate one video."""

  width: int
  height: int
  target: Track
  distractors: list[Track]
  camera: np.ndarray  # (F,2) int background offsets
  occluder: np.ndarray | None  # (F,4) x,y,w,h rects, or None
  gain: np.ndarray  # (F,) brightness factor
  high_speed: bool
  direction: str
  description: str
  render_seed: int
  camera_jumps: bool
  rotates: bool

  @property
  def num_frames(self) -> int:
    return self.target.centres.shape[0]


def shape_polygon(shape: str, size: float, angle: float = 0.0) -> np.ndarray:
  """Vertices (K,2) of `shape` with a side of about `size` px, centred at the origin."""
  if shape == 'circle':
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    pts = 0.5 * np.stack([np.cos(t), np.sin(t)], 1)
  elif shape == 'square':
    pts = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
  elif shape == 'triangle':
    pts = np.array([[0, -0.5], [0.5, 0.5], [-0.5, 0.5]])
  elif shape == 'diamond':
    pts = np.array([[0, -0.6], [0.6, 0], [0, 0.6], [-0.6, 0]])
  elif shape == 'cross':
    a = 0.18
    pts = np.array(
        [
            [-a, -0.5],
            [a, -0.5],
            [a, -a],
            [0.5, -a],
            [0.5, a],
            [a, a],
            [a, 0.5],
            [-a, 0.5],
            [-a, a],
            [-0.5, a],
            [-0.5, -a],
            [-a, -a],
        ]
    )
  elif shape == 'star':
    t = -np.pi / 2 + np.arange(10) * np.pi / 5
    r = np.where(np.arange(10) % 2 == 0, 0.55, 0.24)
    pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
  elif shape == 'hexagon':
    t = np.arange(6) * np.pi / 3
    pts = 0.52 * np.stack([np.cos(t), np.sin(t)], 1)
  else:
    raise ValueError(f'unknown shape {shape!r}; use one of {SHAPES}')
  c, s = np.cos(angle), np.sin(angle)
  return size * pts @ np.array([[c, s], [-s, c]])


def object_box(track: Track, t: int) -> np.ndarray:
  """The unclipped x,y,w,h box of `track` at frame t."""
  pts = (
      shape_polygon(track.shape, track.sizes[t], track.angles[t])
      + track.centres[t]
  )
  lo, hi = pts.min(0), pts.max(0)
  return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def _move(
    rng,
    n: int,
    start,
    velocity,
    lo,
    hi,
    leave_axis: int | None = None,
    gap: float = 0.0,
) -> np.ndarray:
  """Centres (n,2) under constant velocity plus smooth wobble, reflecting at [lo, hi].

  On `leave_axis` the object first runs free: it leaves the view, wraps around
  a strip of width `gap` beyond the borders (the stretch out of view), comes
  back from the other side and reflects once it is inside [lo, hi] again.
  """
  pos, vel = np.array(start, float), np.array(velocity, float)
  wobble = rng.normal(0, 0.08 * np.linalg.norm(vel) + 0.05, size=(n, 2))
  free = [axis == leave_axis for axis in range(2)]
  wrapped = False
  out = np.empty((n, 2))
  for t in range(n):
    out[t] = pos
    pos = pos + vel + wobble[t]
    for axis in range(2):
      if free[axis]:
        span = hi[axis] - lo[axis] + gap
        if (
            not wrapped
            and not lo[axis] - gap / 2 <= pos[axis] <= hi[axis] + gap / 2
        ):
          pos[axis] += span if pos[axis] < lo[axis] else -span
          wrapped = True
        elif wrapped and lo[axis] <= pos[axis] <= hi[axis]:
          free[axis] = False
      elif pos[axis] < lo[axis] or pos[axis] > hi[axis]:
        vel[axis] = -vel[axis]
        pos[axis] = np.clip(
            2 * np.clip(pos[axis], lo[axis], hi[axis]) - pos[axis],
            lo[axis],
            hi[axis],
        )
  return out


def _appearances(
    rng, mode: str, count: int
) -> tuple[tuple[str, str], list[tuple[str, str]]]:
  """Target (shape, colour) and distractors that differ in colour OR shape (per `mode`)."""
  colours = list(COLOURS)
  target = (
      SHAPES[rng.integers(len(SHAPES))],
      colours[rng.integers(len(colours))],
  )
  if mode == 'none':
    return target, []
  others = []
  for _ in range(count):
    if mode == 'mixed':
      kind = ('color', 'shape')[rng.integers(2)]
    else:
      kind = 'color' if mode == 'language' else mode
    if kind == 'color':
      choices = [c for c in colours if c != target[1]]
      others.append((target[0], choices[rng.integers(len(choices))]))
    else:
      choices = [s for s in SHAPES if s != target[0]]
      others.append((choices[rng.integers(len(choices))], target[1]))
  return target, others


def _sizes(rng, n: int, base: float) -> np.ndarray:
  amp, period, phase = (
      rng.uniform(0, 0.25),
      rng.uniform(20, 80),
      rng.uniform(0, 2 * np.pi),
  )
  return base * (1 + amp * np.sin(2 * np.pi * np.arange(n) / period + phase))


def _target_track(
    rng, opts: SynthOptions, shape, colour, size, high_speed, direction, leaves
):
  n, w, h = opts.frames, opts.width, opts.height
  rel = rng.uniform(*(opts.high_speed if high_speed else opts.normal_speed))
  unit = np.array(DIRECTIONS[direction])
  axis = 0 if unit[0] else 1
  extent = (w, h)[axis]
  speed = rel * size
  if not high_speed:  # keep the whole run on screen unless it is meant to leave
    speed = (
        min(speed, 0.7 * extent / n)
        if not leaves
        else max(speed, 1.2 * extent / n)
    )
  margin = size
  lo, hi = np.array([margin, margin]), np.array([w - margin, h - margin])
  start = rng.uniform(lo, hi)
  start[axis] = np.clip(
      (0.85 if unit[axis] < 0 else 0.15) * extent, lo[axis], hi[axis]
  )
  velocity = unit * speed
  velocity[1 - axis] = rng.uniform(-0.3, 0.3) * speed  # some sideways drift
  frames_out = rng.uniform(*((2, 6) if high_speed else (4, 12)))
  gap = speed * frames_out + 2 * size
  centres = _move(
      rng, n, start, velocity, lo, hi, axis if leaves else None, gap
  )
  spin = rng.uniform(-0.08, 0.08) if rng.random() < opts.rotation_prob else 0.0
  angles = rng.uniform(0, 2 * np.pi) * (shape != 'circle') + spin * np.arange(n)
  return (
      Track(shape, colour, centres, _sizes(rng, n, size), angles),
      abs(spin) * n > np.pi / 4,
  )


def _distractor_track(
    rng, opts: SynthOptions, shape, colour, size, high_speed
) -> Track:
  n = opts.frames
  rel = rng.uniform(*(opts.high_speed if high_speed else opts.normal_speed))
  angle = rng.uniform(0, 2 * np.pi)
  velocity = rel * size * np.array([np.cos(angle), np.sin(angle)])
  lo = np.array([size, size])
  hi = np.array([opts.width - size, opts.height - size])
  centres = _move(rng, n, rng.uniform(lo, hi), velocity, lo, hi, None)
  sz = size * rng.uniform(0.8, 1.2)
  angles = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.05, 0.05) * np.arange(n)
  return Track(shape, colour, centres, _sizes(rng, n, sz), angles)


def _occluder(rng, target: Track, opts: SynthOptions) -> np.ndarray | None:
  """An opaque rectangle (integer pixel rect per frame) drifting over the target's path
  around a random frame, never touching the target in the first frame (re-drawn up to
  5 times, else no occluder)."""
  n = opts.frames
  first = object_box(target, 0)
  first = (first[0], first[1], first[0] + first[2], first[1] + first[3])
  for _ in range(5):
    tc = int(rng.integers(n // 4, 3 * n // 4))
    side = max(3.0 * target.sizes.max(), 24.0) * rng.uniform(1.0, 1.6, size=2)
    drift = rng.uniform(-1.5, 1.5, size=2)
    centres = target.centres[tc] + (np.arange(n)[:, None] - tc) * drift
    rects = np.round(
        np.concatenate([centres - side / 2, np.broadcast_to(side, (n, 2))], 1)
    )
    if covered_fraction(first, rects, 0) == 0:
      return rects
  return None


def _fold(x: np.ndarray, hi: float) -> np.ndarray:
  """Reflects x into [0, hi] (a triangle wave), so the camera turns back at the border."""
  y = np.mod(x, 2 * hi)
  return np.where(y > hi, 2 * hi - y, y)


def _camera(rng, opts: SynthOptions, margin: int) -> tuple[np.ndarray, bool]:
  """Integer background offsets in [0, 2*margin]: a smooth drift plus optional jumps."""
  n = opts.frames
  steps = rng.uniform(-1.5, 1.5, size=2) + rng.normal(0, 0.3, size=(n, 2))
  steps[0] = 0
  jumps = bool(rng.random() < opts.camera_jump_prob)
  if jumps:
    for t in rng.integers(1, n, size=2):
      steps[t] += rng.uniform(-15, 15, size=2)
  path = _fold(margin + np.cumsum(steps, 0), 2 * margin)
  return np.rint(path).astype(np.int64), jumps


def describe(rng, target: Track, direction: str, high_speed: bool) -> str:
  """A description naming what tells the target apart: colour, shape and motion."""
  templates = (
      [
          'the fast {c} {s}',
          '{a} {c} {s} moving {d} very fast',
          'the {c} {s} darting {d} at high speed',
      ]
      if high_speed
      else [
          'the {c} {s} moving {d}',
          'a small {c} {s} moving {d}',
          'the {c} {s} that moves {d}',
      ]
  )
  article = 'an' if target.colour[0] in 'aeiou' else 'a'
  return templates[rng.integers(len(templates))].format(
      a=article, c=target.colour, s=target.shape, d=direction
  )


def sample_scene(
    rng: np.random.Generator, opts: SynthOptions, high_speed: bool
) -> Scene:
  """Samples one video's scene."""
  count = int(
      rng.integers(opts.num_distractors[0], opts.num_distractors[1] + 1)
  )
  (shape, colour), others = _appearances(rng, opts.distractors, count)
  size = rng.uniform(*opts.size_range)
  direction = list(DIRECTIONS)[rng.integers(len(DIRECTIONS))]
  leaves = rng.random() < opts.out_of_view_prob
  target, rotates = _target_track(
      rng, opts, shape, colour, size, high_speed, direction, leaves
  )
  distractors = [
      _distractor_track(rng, opts, s, c, size, high_speed) for s, c in others
  ]
  occluder = (
      _occluder(rng, target, opts)
      if rng.random() < opts.occlusion_prob
      else None
  )
  camera, jumps = _camera(rng, opts, CAMERA_MARGIN)
  gain = np.ones(opts.frames)
  if rng.random() < opts.illumination_prob:
    gain = 1 + 0.3 * np.sin(np.linspace(0, rng.uniform(2, 6), opts.frames))
  target.grey_until = _grey_frames(rng, opts)
  return Scene(
      opts.width,
      opts.height,
      target,
      distractors,
      camera,
      occluder,
      gain,
      high_speed,
      direction,
      describe(rng, target, direction, high_speed),
      int(rng.integers(2**31)),
      jumps,
      rotates,
  )


def _grey_frames(rng, opts: SynthOptions) -> int:
  """How many first frames show the target grey (draws only when enabled, so the
  other modes keep their random streams)."""
  frames = (
      max(opts.grey_frames, 1)
      if opts.distractors == 'language'
      else opts.grey_frames
  )
  if frames <= 0:
    return 0
  return frames if rng.random() < opts.grey_fraction else 0


def covered_fraction(box, occluder, t: int) -> float:
  """Fraction of ``box`` (x0, y0, x1, y1) the occluder covers at frame ``t``."""
  if occluder is None:
    return 0.0
  ox, oy, ow, oh = occluder[t]
  ix = max(0.0, min(box[2], ox + ow) - max(box[0], ox))
  iy = max(0.0, min(box[3], oy + oh) - max(box[1], oy))
  return ix * iy / ((box[2] - box[0]) * (box[3] - box[1]))
