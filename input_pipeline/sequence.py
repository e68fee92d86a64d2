"""The one sequence interface shared by every reader, the tracker and the evaluator.

Conventions (the datasets' own files and the official toolkits'):

* `boxes` are `x, y, w, h` in 0-based pixel coordinates exactly as the files
  store them, as float64.  Rows are NaN where the target is absent (an absence
  / full-occlusion / out-of-view flag, or the all-zero box that TNL2K,
  WebUAV-3M and VL-SOT write for absent frames) or unknown (test sets that
  ship only the first box).  When NaN-ing changed a stored row, the stored
  array is kept in `extra['raw_boxes']` so evaluation protocols that score
  absent frames against the stored box can still do so.
* `visible` is False where the target is absent, fully occluded, out of view,
  or its box is invalid (non-finite, or width / height <= 0).  Negative x / y
  is a valid box that sticks out of the image.  Invalid boxes never raise:
  they are counted in `extra['invalid_boxes']`.
* `language` is the description's first non-empty line, stripped of surrounding
  white space and otherwise unchanged (case, commas and a final '.' are kept;
  normalising is the tokenizer's job).  Datasets without captions get a
  pseudo-description (GOT-10k: major + motion class; TrackingNet, COCO: class).
* Other `extra` keys readers set: `absent_labels` (the files mark absence),
  `first_box_only`, `image_size` (width, height) when known, `subset`,
  `attribute_values` (the raw attribute vector), `relative_speed`.
"""

from __future__ import annotations

import dataclasses
import struct
import warnings
from dataclasses import field

import cv2
import numpy as np

from cost_jax import errors

__all__ = [
    'Sequence',
    'ReadError',
    'DatasetRootError',
    'check_box',
    'box_validity',
    'build_sequence',
    'fit_length',
    'union_masks',
    'read_image_size',
    'ROOT_FLAG',
]


class ReadError(errors.UserError, ValueError):
  """An annotation file that cannot be read; names the file and line and the fix."""

  def __init__(
      self, path, problem: str, line: int | None = None, fix: str = ''
  ):
    self.path = str(path)
    self.line = line
    self.problem = problem
    self.fix = fix
    where = self.path if line is None else f'{self.path}, line {line}'
    message = f'{where}: {problem}'
    if fix:
      message += f'. Fix: {fix}'
    super().__init__(message)


class DatasetRootError(ReadError, FileNotFoundError):
  """The dataset root (or a folder the layout needs) does not exist."""

  def __init__(
      self, dataset: str, root, problem: str = 'dataset root not found'
  ):
    flag = ROOT_FLAG.format(name=dataset)
    super().__init__(
        root,
        f'{problem} for dataset {dataset!r}',
        fix=f'point {flag} at the folder that holds the dataset '
        f'(see input_pipeline/readers/{_MODULE_OF.get(dataset, dataset)}.py for the layout)',
    )
    self.dataset = dataset


# The config flag that sets a dataset's root (configs/cost.py: config.data.roots.<name>).
ROOT_FLAG = '--config.data.roots.{name}'
_MODULE_OF = {
    'lasot_ext': 'lasot',
    'otb99_lang': 'otb_lang',
    'webuav3m': 'webuav',
    'vlsot500': 'vlsot',
    'vlsot230': 'vlsot',
    'vlsot270': 'vlsot',
    'synthetic': 'vlsot',
}


@dataclasses.dataclass
class Sequence:
  """One annotated video (or a 1-frame pseudo-video for image datasets)."""

  name: str
  dataset: str
  frames: list[str]
  boxes: np.ndarray
  visible: np.ndarray
  language: str
  attributes: dict[str, bool]
  object_class: str = ''
  extra: dict = field(default_factory=dict)

  def __post_init__(self):
    self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
    self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
    n = len(self.frames)
    if self.boxes.shape[0] != n or self.visible.shape[0] != n:
      raise ValueError(
          f'sequence {self.dataset}/{self.name}: {n} frames but {self.boxes.shape[0]} '
          f'boxes and {self.visible.shape[0]} visibility flags; they must match'
      )

  def __len__(self) -> int:
    return len(self.frames)

  @property
  def init_box(self) -> np.ndarray:
    """The first frame's box (the tracker's initialisation)."""
    return self.boxes[0]

  @property
  def image_size(self) -> tuple[int, int] | None:
    """(width, height) from `extra['image_size']` or the first frame's header (cached);
    None if the frame cannot be read."""
    if 'image_size' not in self.extra and self.frames:
      try:
        self.extra['image_size'] = read_image_size(self.frames[0])
      except OSError:
        return None
    size = self.extra.get('image_size')
    return None if size is None else (int(size[0]), int(size[1]))


def read_image_size(path: str) -> tuple[int, int]:
  """(width, height) of a JPEG or PNG from its header, else by decoding it with cv2."""
  with open(path, 'rb') as f:
    head = f.read(24)
    if head[:8] == b'\x89PNG\r\n\x1a\n':
      return struct.unpack('>II', head[16:24])
    if head[:2] == b'\xff\xd8':
      f.seek(2)
      while True:
        marker = f.read(4)
        if len(marker) < 4 or marker[0] != 0xFF:
          break
        if marker[1] in _JPEG_SOF:
          height, width = struct.unpack('>HH', f.read(5)[1:])
          return width, height
        f.seek(struct.unpack('>H', marker[2:])[0] - 2, 1)
  image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
  if image is None:
    raise FileNotFoundError(f'cannot read image {path}')
  return image.shape[1], image.shape[0]


_JPEG_SOF = frozenset(
    {
        0xC0,
        0xC1,
        0xC2,
        0xC3,
        0xC5,
        0xC6,
        0xC7,
        0xC9,
        0xCA,
        0xCB,
        0xCD,
        0xCE,
        0xCF,
    }
)


def check_box(box) -> str | None:
  """Why a single `x, y, w, h` box is invalid, or None if it is valid."""
  box = np.asarray(box, dtype=np.float64).reshape(-1)
  if box.shape != (4,):
    return f'expected 4 numbers, got {box.shape[0]}'
  if not np.all(np.isfinite(box)):
    return 'NaN or infinite value'
  if box[2] <= 0 or box[3] <= 0:
    return 'width or height <= 0'
  return None


def box_validity(boxes: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
  """Vectorised `check_box`: (valid mask, counts of invalid rows per reason)."""
  boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
  finite = np.all(np.isfinite(boxes), axis=1)
  with np.errstate(invalid='ignore'):
    positive = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
  counts = {
      'nan': int(np.sum(~finite)),
      'non_positive_size': int(np.sum(finite & ~positive)),
  }
  return finite & positive, counts


def fit_length(
    values: np.ndarray, n: int, fill, what: str, source
) -> np.ndarray:
  """Pads (with `fill`) or truncates per-frame `values` to `n` rows, warning on a mismatch."""
  values = np.asarray(values)
  if values.shape[0] == n:
    return values
  warnings.warn(
      f'{source}: {what} has {values.shape[0]} rows for {n} frames; '
      f'{"padding" if values.shape[0] < n else "truncating"} to {n}',
      stacklevel=3,
  )
  if values.shape[0] > n:
    return values[:n]
  pad = np.full(
      (n - values.shape[0],) + values.shape[1:], fill, dtype=values.dtype
  )
  return np.concatenate([values, pad])


def union_masks(*masks: np.ndarray | None) -> np.ndarray | None:
  """Element-wise OR of per-frame bool masks of possibly different lengths (None skipped)."""
  masks = [np.asarray(m, bool).reshape(-1) for m in masks if m is not None]
  if not masks:
    return None
  out = np.zeros(max(m.shape[0] for m in masks), bool)
  for m in masks:
    out[: m.shape[0]] |= m
  return out


def build_sequence(
    name: str,
    dataset: str,
    frames: list[str],
    boxes: np.ndarray,
    *,
    absent: np.ndarray | None = None,
    language: str = '',
    attributes: dict[str, bool] | None = None,
    object_class: str = '',
    extra: dict | None = None,
    source: str = '',
    zero_box_is_absent: bool = True,
) -> Sequence:
  """Builds a `Sequence` from raw file contents, applying the conventions above.

  `boxes` may be shorter than `frames`: a single row (test sets that ship the
  first box only) is padded with NaN silently, anything else with a warning.
  `absent` is a per-frame bool mask from the dataset's flag files (any
  length; fitted with a warning).  `source` names the annotation file in
  warnings.
  """
  n = len(frames)
  extra = dict(extra or {})
  raw = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
  unknown = np.arange(n) >= raw.shape[0]  # rows the box file does not cover
  if raw.shape[0] == 1 and n > 1:
    extra['first_box_only'] = True
    raw = np.concatenate([raw, np.full((n - 1, 4), np.nan)])
  raw = fit_length(raw, n, np.nan, 'the box file', source or name)
  flagged = np.zeros(n, bool)
  if absent is not None:
    flagged = fit_length(
        np.asarray(absent, bool).reshape(-1),
        n,
        False,
        'the absence flags',
        source or name,
    )
    extra['absent_labels'] = True
  if zero_box_is_absent:
    zero = np.all(raw == 0, axis=1)
    if zero.any():
      extra['absent_labels'] = True
    flagged = flagged | zero
  boxes_out = raw.copy()
  boxes_out[flagged] = np.nan
  if not np.array_equal(boxes_out, raw, equal_nan=True):
    extra['raw_boxes'] = raw
  valid, _ = box_validity(boxes_out)
  _, counts = box_validity(
      boxes_out[~flagged & ~unknown]
  )  # absent / unknown rows are expected
  extra['invalid_boxes'] = {k: v for k, v in counts.items() if v > 0}
  return Sequence(
      name=name,
      dataset=dataset,
      frames=list(frames),
      boxes=boxes_out,
      visible=valid & ~flagged,
      language=language,
      attributes=dict(attributes or {}),
      object_class=object_class,
      extra=extra,
  )
