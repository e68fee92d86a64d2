"""The tracking algorithm shared by `Tracker` (one stream) and the batched runner.

TransT's online tracker (research/transt_facts.md §8), for any candidate
grid (COST 21x21 / 20x20 / demo 11x11, TransT 32x32):

* init: template crop of ``data.template_factor`` (2x) context around the
  box, resized to ``template_size``; the template and the text are encoded
  once; the first frame's per-channel mean pads every later crop;
* per frame: search crop of ``data.search_factor`` (4x) context around the
  last centre with the last size, side ``s_x`` = ceil(...); then ONE jitted
  device step: network on the cached features, target probability, Hanning
  penalty ``p*(1-wi) + window*wi`` with ``window = np.outer(np.hanning(G),
  np.hanning(G))``, argmax (first index on ties), decode ``bbox*s_x``,
  ``cx = bbox_cx + center_x - s_x/2``, clip cx/cy to [0, W/H] and w/h to
  ``max(min_size, min(w, W/H))``.  Only the (cx, cy, w, h) box and the
  candidate's probability come back to the host, as one (B, 5) array.

The step is batched natively (B sequences at once): the host crops, the
device does the rest.  pscore and decoding run in float32 on device (TransT:
float64 on host); the differences are < 1e-3 px for frames below 4k px.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from cost_jax import crops as crops_lib
from cost_jax import errors
from cost_jax import text as text_lib
from cost_jax.models import cost as cost_lib
from cost_jax.models import factory
from cost_jax.tracking import search
from cost_jax.tracking.search import windowed_scores

__all__ = [
    'Engine',
    'SequenceState',
    'hanning_window',
    'select_and_decode',
    'check_frame',
    'check_init_box',
    'compiled_functions',
    'windowed_scores',
]


def hanning_window(grid_side: int) -> np.ndarray:
  """TransT's penalty window, flattened row-major: float64 (G*G,)."""
  return np.outer(np.hanning(grid_side), np.hanning(grid_side)).reshape(-1)


def select_and_decode(
    scores, boxes, window, geometry, window_influence, min_size
):
  """Device part of one frame after the network (all float32, batched).

  scores (B, N) target probability; boxes (B, N, 4) normalised cx, cy, w, h;
  window (N,); geometry (B, 5) = centre x, centre y, s_x, image W, image H.
  Returns (B, 4) image cx, cy, w, h and (B,) probability of the chosen cell.
  """
  pscore = windowed_scores(scores, window, window_influence)
  best = jnp.argmax(pscore, axis=-1)
  box = jnp.take_along_axis(boxes, best[:, None, None], axis=1)[:, 0]
  score = jnp.take_along_axis(scores, best[:, None], axis=1)[:, 0]
  cx0, cy0, s_x, img_w, img_h = (geometry[:, i] for i in range(5))
  bbox = box * s_x[:, None]
  cx = jnp.clip(bbox[:, 0] + cx0 - s_x / 2, 0.0, img_w)
  cy = jnp.clip(bbox[:, 1] + cy0 - s_x / 2, 0.0, img_h)
  w = jnp.maximum(min_size, jnp.minimum(bbox[:, 2], img_w))
  h = jnp.maximum(min_size, jnp.minimum(bbox[:, 3], img_h))
  return jnp.stack([cx, cy, w, h], axis=-1), score


@dataclasses.dataclass
class SequenceState:
  """Host-side state of one tracked sequence (float64, TransT's variables)."""

  center: np.ndarray  # (2,) cx, cy
  size: np.ndarray  # (2,) w, h
  pad: np.ndarray  # (3,) first frame's channel mean
  # (2,) last displacement, for track.motion='velocity' (cost_jax.tracking.search)
  velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))

  @property
  def box(self) -> np.ndarray:
    """The current x, y, w, h box."""
    return np.concatenate([self.center - self.size / 2, self.size])


def check_frame(frame, what: str = 'frame') -> np.ndarray:
  """An HxWx3 uint8 RGB frame, or an errors.InvalidValue saying what to fix."""
  if (
      not isinstance(frame, np.ndarray)
      or frame.ndim != 3
      or frame.shape[2] != 3
  ):
    shape = getattr(frame, 'shape', type(frame).__name__)
    raise errors.InvalidValue(
        f'{what} must be an HxWx3 RGB numpy array, got {shape}',
        'convert BGR frames from cv2 with cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)',
    )
  if frame.dtype != np.uint8:
    raise errors.InvalidValue(
        f'{what} must be uint8 (0-255), got dtype {frame.dtype}',
        'use frame.clip(0, 255).astype(np.uint8)',
    )
  return frame


def check_init_box(box, image_wh, what: str = 'initial box') -> np.ndarray:
  """A finite x, y, w, h box of positive size that overlaps the image, else
  errors.InvalidValue (a ValueError)."""
  b = np.asarray(box, np.float64).reshape(-1)
  width, height = image_wh
  xywh = 'the top-left corner x, y and the width, height in pixels'
  if b.shape != (4,):
    raise errors.InvalidValue(
        f'{what} must be 4 numbers x, y, w, h; got {np.asarray(box).tolist()}',
        f'give {xywh}',
    )
  if not np.all(np.isfinite(b)):
    raise errors.InvalidValue(
        f'{what} {b.tolist()} has a NaN or infinite value',
        f'give 4 finite numbers: {xywh}',
    )
  if b[2] <= 0 or b[3] <= 0:
    raise errors.InvalidValue(
        f'{what} {b.tolist()} has zero or negative width/height',
        'give x, y, w, h with w, h > 0 (not x1, y1, x2, y2 with x2 < x1)',
    )
  if b[0] >= width or b[1] >= height or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
    raise errors.InvalidValue(
        f'{what} {b.tolist()} lies outside the {width}x{height} image',
        f'give a box that overlaps it: x < {width}, y < {height}, x + w > 0, y + h > 0',
    )
  return b


class Engine:
  """Model + jitted functions + host geometry; stateless across sequences.

  ``forward(variables, crops, template_cache, text_cache) -> {'logits',
  'boxes'}`` replaces the network inside the jitted step (tests inject an
  oracle there); the default is ``model.track``.
  """

  def __init__(self, config, variables, *, forward=None, model_and_spec=None):
    self.config = config
    self.model, self.spec = model_and_spec or factory.create_model(config)
    self.variables = jax.device_put(variables)
    self.grid_side = self.spec.grid_side
    self.window = hanning_window(self.grid_side)
    self.window_influence = float(config.track.window_influence)
    self.template_factor = float(config.data.template_factor)
    self.search_factor = float(config.data.search_factor)
    self.size_lr = float(config.track.get('size_lr', 1.0))
    self.motion = str(config.track.get('motion', 'none'))
    if self.motion not in search.MOTIONS:
      raise errors.InvalidValue(
          f'config.track.motion={self.motion!r} is not one of {search.MOTIONS}',
          'set --config.track.motion=none (TransT) or velocity',
      )
    self.lost_score = float(config.track.get('lost_score', 0.0))
    self.redetect_offsets = search.tile_offsets(
        int(config.track.get('redetect_tiles', 1)),
        float(config.track.get('redetect_stride', 0.75)),
    )
    self._tokenizer = None
    self._cache_shapes = {}  # (batch size, with text) -> cache shapes
    self._settings = (
        self.spec,
        self.window_influence,
        float(config.track.min_size),
        forward,
    )
    self.encode_template, self.encode_text, self.step = compiled_functions(
        *self._settings
    )

  @property
  def step_with_scores(self):
    """`step` that also returns the windowed scores and candidate centres (compiled on
    first use): (B, 5 + 3N) = cx, cy, w, h, score, N windowed scores, N image x, N image y.
    """
    return compiled_functions(*self._settings, with_scores=True)[2]

  # --- host side -------------------------------------------------------------
  @property
  def tokenizer(self):
    if self._tokenizer is None:

      self._tokenizer = text_lib.Tokenizer(
          factory.text_model_path(self.config), self.config.text.max_len
      )
    return self._tokenizer

  def tokenize(self, description, name=None):
    """(ids, mask) int32 (1, T) for the linguistic branch; None for w/o LB."""
    if not self.spec.language:
      return None
    ids, mask = self.tokenizer.encode(description, name)
    return ids[None], mask[None]

  def start(self, frame, box, what: str = 'initial box'):
    """Validates the first frame/box; -> (SequenceState, template crop (1, Tz, Tz, 3) uint8)."""
    frame = check_frame(frame, 'the first frame')
    b = check_init_box(box, (frame.shape[1], frame.shape[0]), what)
    state = SequenceState(
        center=b[:2] + b[2:] / 2,
        size=b[2:].copy(),
        pad=crops_lib.pad_colour(frame),
    )
    s_z = crops_lib.context_crop_side(b[2], b[3], self.template_factor)
    z = crops_lib.get_subwindow(
        frame, state.center, self.spec.template_size, s_z, state.pad
    )
    return state, z[None]

  def encode(self, template_crop, tokens):
    """Device caches (template, text) for a batch of 1 (text {} for w/o LB)."""
    template = self.encode_template(self.variables, template_crop)
    text = {} if tokens is None else self.encode_text(self.variables, *tokens)
    return template, text

  def batch_caches(self, template, text, batch_size: int):
    """Batch-``batch_size`` template/text caches, every slot a copy of the
    batch-1 ones (leaves without a batch axis are shared as they are)."""
    key = (batch_size, bool(text))
    if key not in self._cache_shapes:  # from the model, not `encode_template`:
      # an exported engine's functions cannot be traced
      m, size = self.model, self.spec.template_size
      v = factory.variable_shapes(m, self.spec)
      z = jax.ShapeDtypeStruct((batch_size, size, size, 3), jnp.uint8)
      shapes = [jax.eval_shape(_method(m, 'encode_template'), v, z), {}]
      if text:
        ids = jax.ShapeDtypeStruct((batch_size, self.spec.text_len), jnp.int32)
        shapes[1] = jax.eval_shape(_method(m, 'encode_text'), v, ids, ids)
      self._cache_shapes[key] = shapes
    return tuple(
        jax.tree.map(lambda s, t: jnp.broadcast_to(s, t.shape), single, target)
        for single, target in zip((template, text), self._cache_shapes[key])
    )

  def search_side(self, state: SequenceState) -> int:
    """The side ``s_x`` of the searched square in image pixels."""
    return math.ceil(
        crops_lib.context_crop_side(
            state.size[0], state.size[1], self.search_factor
        )
    )

  def search_centre(self, state: SequenceState) -> np.ndarray:
    """The last centre, plus the last displacement with track.motion='velocity'."""
    if self.motion == 'velocity':
      return state.center + state.velocity
    return state.center

  def search_crop(self, frame, state: SequenceState, offset=None):
    """(crop (S, S, 3) uint8, geometry (5,) float32) for the next step;
    ``offset`` (2,) px moves the square (re-detection tiles)."""
    centre = self.search_centre(state)
    if offset is not None:
      centre = centre + offset
    s_x = self.search_side(state)
    crop = crops_lib.get_subwindow(
        frame, centre, self.spec.search_size, s_x, state.pad
    )
    geometry = np.array(
        [centre[0], centre[1], s_x, frame.shape[1], frame.shape[0]],
        np.float32,
    )
    return crop, geometry

  def redetect(self, frame, state, out, geometry, caches):
    """``out`` (5,), or the re-detection's row when its score is below
    track.lost_score and track.redetect_tiles > 1 (cost_jax.tracking.search).
    ``geometry``: the (5,) geometry of the search that gave ``out``;
    ``caches``: the sequence's batch-1 (template, text) from `encode`."""
    if len(self.redetect_offsets) and out[4] < self.lost_score:
      return search.redetect(self, frame, state, (out, geometry), caches)
    return out

  def update(self, state: SequenceState, cxcywh, score=None) -> np.ndarray:
    """Moves the state to the decoded (cx, cy, w, h); returns the x, y, w, h box.

    The size follows the prediction at rate ``config.track.size_lr`` (1 =
    TransT: the new size is taken as predicted). The velocity is the
    displacement when ``score`` reaches track.lost_score, else zero.
    """
    cxcywh = np.asarray(cxcywh, np.float64)
    confident = score is not None and score >= self.lost_score
    state.velocity = (cxcywh[:2] - state.center) if confident else np.zeros(2)
    state.center = cxcywh[:2].copy()
    lr = self.size_lr
    state.size = (
        cxcywh[2:].copy()
        if lr == 1.0
        else (lr * cxcywh[2:] + (1.0 - lr) * state.size)
    )
    return state.box


def _method(model, name):
  """``model.apply(variables, *args, method=name)`` as a function."""
  return functools.partial(model.apply, method=getattr(model, name))


@functools.lru_cache(maxsize=16)
def compiled_functions(
    spec,
    window_influence: float,
    min_size: float,
    forward=None,
    with_scores: bool = False,
):
  """(encode_template, encode_text, step) jitted once per spec/settings/forward.

  Cached so that every `Tracker` / runner of one model shares compilations.
  ``with_scores``: the step also returns the score map (`Engine.step_with_scores`).
  """
  model = cost_lib.COST(spec)
  forward = forward or (
      lambda v, x, z, t: model.apply(v, x, z, t, method=model.track)
  )
  encode_template = jax.jit(
      lambda v, z: model.apply(v, z, method=model.encode_template)
  )
  encode_text = jax.jit(
      lambda v, ids, mask: model.apply(v, ids, mask, method=model.encode_text)
  )
  step = jax.jit(
      functools.partial(
          _step,
          forward=forward,
          window=hanning_window(spec.grid_side).astype(np.float32),
          window_influence=window_influence,
          min_size=min_size,
          with_scores=with_scores,
      )
  )
  return encode_template, encode_text, step


def _step(
    variables,
    crops,
    template,
    text,
    geometry,
    *,
    forward,
    window,
    window_influence,
    min_size,
    with_scores=False,
):
  """The jitted per-frame function: network + scores + window + argmax + decode.

  Returns (B, 5): image cx, cy, w, h and the chosen candidate's probability;
  ``with_scores``: (B, 5 + 3N), then every candidate's windowed score and the
  image x and y of its box centre.
  """
  out = forward(variables, crops, template, text)
  scores = cost_lib.candidate_scores(out['logits']).astype(jnp.float32)
  if scores.shape[-1] != window.shape[0]:
    raise ValueError(
        f'the head scores {scores.shape[-1]} candidates but the grid is '
        f'{int(round(window.shape[0] ** 0.5))}^2 = {window.shape[0]}'
    )
  boxes = out['boxes'].astype(jnp.float32)
  box, score = select_and_decode(
      scores, boxes, jnp.asarray(window), geometry, window_influence, min_size
  )
  parts = [box, score[:, None]]
  if with_scores:
    half = geometry[:, 2:3] / 2
    parts += [
        windowed_scores(scores, jnp.asarray(window), window_influence),
        boxes[..., 0] * geometry[:, 2:3] + geometry[:, 0:1] - half,
        boxes[..., 1] * geometry[:, 2:3] + geometry[:, 1:2] - half,
    ]
  return jnp.concatenate(parts, axis=-1)  # one array: one readback
