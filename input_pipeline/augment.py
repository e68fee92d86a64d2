"""TransT's pair processing (`ltr/data/processing.py::TransTProcessing`) in numpy + cv2.

For one sampled pair of decoded frames:

* joint grayscale with probability `gray_prob` (cv2 gray replicated to 3
  channels, applied to both full frames before cropping);
* the crop box: the target box jittered (`jitter_box`: size x exp(N(0,1) *
  scale_jitter) per side, centre + 0.5 (w'+h') center_jitter (U[0,1) - 0.5) per
  axis); TransT uses center 3 / scale 0.25 for the search crop and no jitter
  for the template;
* a context crop (`cost_jax.crops.crop_and_map`: 2x -> template side, 4x ->
  search side, out-of-image area = the frame's mean colour, cv2 bilinear resize)
  and the box mapped into it;
* a brightness factor from U[1 - b, 1 + b] per image (saturating uint8 multiply).

Frames come in as cv2 BGR; crops go out RGB uint8.  The search box goes out as
(cx, cy, w, h) / search side; for an absent target the crop is centred on the
nearest visible box (jittered), the box is zeros and `visible` is False.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from cost_jax import crops

__all__ = [
    'PairParams',
    'FrameError',
    'decode_frame',
    'jitter_box',
    'to_gray',
    'brightness',
    'process_pair',
]


@dataclasses.dataclass(frozen=True)
class PairParams:
  """Crop and augmentation settings (config.data.* and config.model.*_size)."""

  template_size: int = 128
  search_size: int = 256
  template_factor: float = 2.0
  search_factor: float = 4.0
  center_jitter: float = 3.0
  scale_jitter: float = 0.25
  gray_prob: float = 0.05
  brightness_jitter: float = 0.2

  @classmethod
  def from_config(cls, config) -> 'PairParams':
    d, m = config.data, config.model
    return cls(
        template_size=int(m.template_size),
        search_size=int(m.search_size),
        template_factor=float(d.template_factor),
        search_factor=float(d.search_factor),
        center_jitter=float(d.center_jitter),
        scale_jitter=float(d.scale_jitter),
        gray_prob=float(d.gray_prob),
        brightness_jitter=float(d.brightness_jitter),
    )


class FrameError(OSError):
  """A frame that cannot be read or decoded."""

  def __init__(self, path: str, reason: str):
    super().__init__(f'{path}: {reason}')
    self.path = path
    self.reason = reason


def decode_frame(data: bytes, path: str) -> np.ndarray:
  """Decodes encoded image bytes to HxWx3 uint8 BGR; raises `FrameError` if unusable.

  A JPEG without its end-of-image marker (a truncated file, which libjpeg would
  silently complete with grey) counts as unreadable.
  """
  if not data:
    raise FrameError(path, 'empty file')
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if image is None or image.size == 0:
    raise FrameError(path, 'not a decodable image')
  if data[:2] == b'\xff\xd8' and data.rfind(b'\xff\xd9') < 0:
    raise FrameError(path, 'truncated JPEG (no end-of-image marker)')
  return image


def jitter_box(
    rng: np.random.Generator, box, center_jitter: float, scale_jitter: float
) -> np.ndarray:
  """TransT `_get_jittered_box`; (x, y, w, h) in, (x, y, w, h) out.

  Always draws 2 normals and 2 uniforms, so the stream does not depend on the
  factors.  (Python floats: this runs per crop, where numpy's per-call cost
  on 2-vectors would dominate.)
  """
  x, y, w, h = (float(v) for v in box)
  n = rng.standard_normal(2)
  u = rng.random(2)
  jw, jh = w * math.exp(n[0] * scale_jitter), h * math.exp(n[1] * scale_jitter)
  max_offset = 0.5 * (jw + jh) * center_jitter
  cx = x + 0.5 * w + max_offset * (u[0] - 0.5)
  cy = y + 0.5 * h + max_offset * (u[1] - 0.5)
  return np.array([cx - 0.5 * jw, cy - 0.5 * jh, jw, jh])


def to_gray(image: np.ndarray) -> np.ndarray:
  """cv2 grayscale replicated to 3 channels (TransT `ToGrayscale`)."""
  return cv2.cvtColor(
      cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR
  )


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
  """image x factor, rounded and clipped to uint8 (TransT's clamp to [0, 1])."""
  return cv2.convertScaleAbs(image, alpha=float(factor))


def _pad_value(frame: np.ndarray, crop_box: np.ndarray, factor: float):
  """TransT's pad colour (the frame's mean) if the crop window leaves the frame, else 0.

  The mean of a 1280x720 frame costs about as much as the rest of a crop, and
  most windows around small targets lie inside the frame, where no pixel is
  padded: the crop is the same either way.
  """
  x, y, w, h = crop_box
  side = crops.context_crop_side(w, h, factor)
  xmin, ymin = crops.crop_window((x + 0.5 * w, y + 0.5 * h), side)
  height, width = frame.shape[:2]
  if xmin >= 0 and ymin >= 0 and xmin + side <= width and ymin + side <= height:
    return 0.0
  return crops.pad_colour(frame)


def _crop(
    rng, frame, box, factor, size, center_jitter, scale_jitter, target_box
):
  """Jitter `box`, crop around it; -> (BGR crop, `target_box` in crop pixels)."""
  crop_box = jitter_box(rng, box, center_jitter, scale_jitter)
  if not (
      crop_box[2] > 0 and crop_box[3] > 0 and math.isfinite(crop_box.sum())
  ):
    crop_box = np.asarray(
        box, np.float64
    )  # overflowed jitter: crop on the box itself
  return crops.crop_and_map(
      frame,
      crop_box,
      target_box,
      factor,
      size,
      _pad_value(frame, crop_box, factor),
  )


def process_pair(
    rng: np.random.Generator,
    template_frame: np.ndarray,
    template_box,
    search_frame: np.ndarray,
    search_box,
    search_visible: bool,
    params: PairParams,
) -> dict:
  """Crops and augments one pair; BGR frames in, the example dict (without text) out.

  `search_box` is the target box when `search_visible`, else the box to centre
  the crop on (the nearest visible one).  Random draws, in order: gray roll,
  template jitter, search jitter, two brightness factors.
  """
  if rng.random() < params.gray_prob:  # Joint: both frames or neither.
    same = search_frame is template_frame
    template_frame = to_gray(template_frame)
    search_frame = template_frame if same else to_gray(search_frame)
  template, _ = _crop(
      rng,
      template_frame,
      template_box,
      params.template_factor,
      params.template_size,
      0.0,
      0.0,
      template_box,
  )
  search, mapped = _crop(
      rng,
      search_frame,
      search_box,
      params.search_factor,
      params.search_size,
      params.center_jitter,
      params.scale_jitter,
      search_box,
  )
  factors = 1.0 + params.brightness_jitter * (2.0 * rng.random(2) - 1.0)
  template = cv2.cvtColor(brightness(template, factors[0]), cv2.COLOR_BGR2RGB)
  search = cv2.cvtColor(brightness(search, factors[1]), cv2.COLOR_BGR2RGB)
  if search_visible:
    x, y, w, h = mapped / params.search_size
    box = np.asarray([x + 0.5 * w, y + 0.5 * h, w, h], np.float32)
  else:
    box = np.zeros(4, np.float32)
  return {
      'template': template,
      'search': search,
      'search_box': box,
      'visible': np.bool_(search_visible),
  }
