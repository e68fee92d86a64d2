"""Per-frame tracking measures and threshold curves, vectorised numpy.

Boxes are ``x, y, w, h`` rows (top-left corner, width, height), shape (N, 4).
Every function here is pure and convention-explicit; which convention each
official toolkit uses is decided in ``protocols.py``.  NaN inputs propagate to NaN
outputs, and NaN never passes a threshold (``NaN > t`` and ``NaN <= t`` are
both False), which is how every toolkit read treats them.

Fixed numbers, the same in every toolkit:

* success (IoU) thresholds: 21 points over [0, 1], test ``IoU > t``
  (101 points for GOT-10k);
* precision (centre error) thresholds: 0..50 px, test ``CLE <= t``, score at 20 px;
* normalised precision thresholds: 0..0.50 step 0.01, test ``<= t``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    'SUCCESS_THRESHOLDS',
    'SUCCESS_THRESHOLDS_101',
    'PRECISION_THRESHOLDS',
    'NORM_PRECISION_THRESHOLDS',
    'as_boxes',
    'matlab_colon',
    'clip_to_image',
    'iou',
    'iou_antiuav',
    'centers',
    'center_error',
    'normalized_center_error',
    'ciou',
    'success_curve',
    'precision_curve',
    'curve_auc',
    'value_at',
    'ao_sr',
    'frame_accuracy',
    'mean_accuracy',
    'speed_fps',
]

SUCCESS_THRESHOLDS = np.linspace(
    0.0, 1.0, 21
)  # got10k / MMOT: np.linspace(0, 1, 21)
SUCCESS_THRESHOLDS_101 = np.linspace(0.0, 1.0, 101)  # GOT-10k val evaluation
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)  # 0..50 px
NORM_PRECISION_THRESHOLDS = (
    np.arange(0, 51, dtype=np.float64) / 100.0
)  # 0..0.50


def as_boxes(boxes) -> np.ndarray:
  """``boxes`` as a float64 (N, 4) array; a single box becomes (1, 4)."""
  arr = np.asarray(boxes, dtype=np.float64)
  if arr.ndim == 1:
    arr = arr.reshape(1, -1)
  if arr.ndim != 2 or arr.shape[1] != 4:
    raise ValueError(
        f'expected boxes of shape (N, 4) as x, y, w, h; got {arr.shape}'
    )
  return arr


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
  """MATLAB's ``start:step:stop`` bit for bit (LaSOT / TNL2K toolkits use ``0:0.05:1``).

  MATLAB builds the first half as ``start + k*step``, the second half as
  ``stop - (n-k)*step`` and an even-count middle as ``(start+stop)/2``, so
  e.g. element 17 is 0.85, not 0.8500000000000001 as ``np.linspace`` gives;
  this matters only when an IoU equals a threshold to the last bit.
  """
  n = int(math.floor((stop - start) / step + 1e-10))
  k = np.arange(n + 1, dtype=np.float64)
  out = np.where(k < n / 2, start + k * step, stop - (n - k) * step)
  if n % 2 == 0:
    out[n // 2] = (start + stop) / 2
  return out


def clip_to_image(boxes, image_size) -> np.ndarray:
  """Clips boxes to a (W, H) image the way got10k ``rect_iou(bound=...)`` does."""
  b = as_boxes(boxes).copy()
  width, height = float(image_size[0]), float(image_size[1])
  b[:, 0] = np.clip(b[:, 0], 0, width)
  b[:, 1] = np.clip(b[:, 1], 0, height)
  b[:, 2] = np.clip(b[:, 2], 0, width - b[:, 0])
  b[:, 3] = np.clip(b[:, 3], 0, height - b[:, 1])
  return b


def _edges(b: np.ndarray, right_offset: float = 0.0):
  """(left, top, right, bottom) with right = x + w + right_offset (same for bottom)."""
  return (
      b[:, 0],
      b[:, 1],
      b[:, 0] + b[:, 2] + right_offset,
      b[:, 1] + b[:, 3] + right_offset,
  )


def _intersection_wh(a: np.ndarray, b: np.ndarray, pixel_inclusive: bool):
  # LaSOT/TNL2K calc_rect_int.m and pytracking: right = x + w - 1, width = r - l + 1.
  off = -1.0 if pixel_inclusive else 0.0
  al, at, ar, ab = _edges(a, off)
  bl, bt, br, bb = _edges(b, off)
  iw = np.minimum(ar, br) - np.maximum(al, bl) - off
  ih = np.minimum(ab, bb) - np.maximum(at, bt) - off
  return np.maximum(iw, 0.0), np.maximum(ih, 0.0)


def iou(
    pred,
    gt,
    *,
    pixel_inclusive: bool = False,
    union_eps: float = 0.0,
    clip: bool = False,
) -> np.ndarray:
  """Per-row intersection over union of x, y, w, h boxes.

  * ``pixel_inclusive``: the MATLAB / pytracking form (right = x + w - 1 and
    intersection + 1).  The -1 and +1 cancel, so it equals the continuous
    form to rounding; kept to mirror those toolkits.
  * ``union_eps`` / ``clip``: got10k ``rect_iou`` adds ``np.finfo(float).eps``
    to the union and clips to [0, 1] (MMOT inherits this).
  Two empty boxes give NaN without eps, 0 with eps.
  """
  a, b = as_boxes(pred), as_boxes(gt)
  if a.shape != b.shape:
    raise ValueError(
        f'pred {a.shape} and gt {b.shape} must have the same shape'
    )
  iw, ih = _intersection_wh(a, b, pixel_inclusive)
  inter = iw * ih
  union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
  with np.errstate(divide='ignore', invalid='ignore'):
    out = inter / (union + union_eps)
  return np.clip(out, 0.0, 1.0) if clip else out


def iou_antiuav(pred, gt) -> np.ndarray:
  """The Anti-UAV / MMOT accuracy ``iou()``: 0 when the overlap is empty, no eps."""
  a, b = as_boxes(pred), as_boxes(gt)
  al, at, ar, ab = _edges(a)
  bl, bt, br, bb = _edges(b)
  iw = np.minimum(ar, br) - np.maximum(al, bl)
  ih = np.minimum(ab, bb) - np.maximum(at, bt)
  overlap = (iw > 0) & (ih > 0)
  union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - iw * ih
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(overlap, iw * ih / np.where(overlap, union, 1.0), 0.0)


def centers(boxes, convention: str = 'minus_one') -> np.ndarray:
  """Box centres.  'minus_one': x + (w-1)/2 (got10k, pytracking, LaSOT, pysot,
  MMOT); 'half': x + w/2 (VOT, CIoU); 'plus_one': x + (w+1)/2 (TrackingNet).
  The constant cancels in centre *differences*, so CLE is the same under all."""
  b = as_boxes(boxes)
  offset = {'minus_one': -1.0, 'half': 0.0, 'plus_one': 1.0}[convention]
  return b[:, :2] + (b[:, 2:] + offset) / 2.0


def center_error(pred, gt) -> np.ndarray:
  """Centre location error (CLE) in pixels."""
  d = centers(pred) - centers(gt)
  return np.sqrt(np.sum(d * d, axis=1))


def normalized_center_error(pred, gt, divisor: str = 'gt') -> np.ndarray:
  """Centre error with each axis divided by the ground-truth width / height.

  * 'gt': centres divided by GT w, h, then subtracted (pytracking, LaSOT/TNL2K MATLAB);
  * 'gt_eps': the same with GT w, h + 1e-16 (MMOT ``center_error_norm``);
  * 'max1': difference divided by max(1, GT w/h) (got10k GitHub
    ``normalized_center_error``).
  The order of division differs as in each toolkit, so results agree to the last bit.
  """
  cp, cg = centers(pred), centers(gt)
  size = as_boxes(gt)[:, 2:]
  with np.errstate(divide='ignore', invalid='ignore'):
    if divisor == 'max1':
      d = (cp - cg) / np.maximum(1.0, size)
    elif divisor in ('gt', 'gt_eps'):
      s = size + 1e-16 if divisor == 'gt_eps' else size
      d = cp / s - cg / s
    else:
      raise ValueError(f'unknown divisor {divisor!r}')
    return np.sqrt(np.sum(d * d, axis=1))


def ciou(pred, gt) -> np.ndarray:
  """Complete IoU as the MMOT toolkit scores it (``rect_iou_complete``).

  CIoU = IoU - rho^2/c^2 - alpha*v with centres at x + w/2, c the diagonal of
  the enclosing box, v = 4/pi^2 (atan(w_g/h_g) - atan(w_p/h_p))^2 and
  alpha = v / (1 - IoU + v + eps); clamped to [-1, 1] then clipped to [0, 1].
  A zero-size box on either side gives NaN (atan(0/0)), i.e. a failed frame.
  """
  p, g = as_boxes(pred), as_boxes(gt)
  pl, pt, pr, pb = _edges(p)
  gl, gt_, gr, gb = _edges(g)
  with np.errstate(divide='ignore', invalid='ignore'):
    inter = np.maximum(np.minimum(pr, gr) - np.maximum(pl, gl), 0) * np.maximum(
        np.minimum(pb, gb) - np.maximum(pt, gt_), 0
    )
    plain_iou = inter / (p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter)
    diag2 = (
        np.maximum(np.maximum(pr, gr) - np.minimum(pl, gl), 0) ** 2
        + np.maximum(np.maximum(pb, gb) - np.minimum(pt, gt_), 0) ** 2
    )
    rho2 = np.sum((centers(g, 'half') - centers(p, 'half')) ** 2, axis=1)
    angle = np.arctan(g[:, 2] / g[:, 3]) - np.arctan(p[:, 2] / p[:, 3])
    v = (4.0 / math.pi**2) * angle**2
    alpha = v / (1.0 - plain_iou + v + np.finfo(float).eps)
    out = plain_iou - rho2 / diag2 - alpha * v
  return np.clip(out, 0.0, 1.0)  # the [-1, 1] clamp is subsumed; NaN stays NaN


def success_curve(
    overlaps, thresholds=SUCCESS_THRESHOLDS, inclusive: bool = False
) -> np.ndarray:
  """Fraction of frames with overlap > t (>= t if ``inclusive``) for each threshold."""
  o = np.asarray(overlaps, dtype=np.float64).reshape(-1, 1)
  t = np.asarray(thresholds, dtype=np.float64).reshape(1, -1)
  if o.shape[0] == 0:
    return np.zeros(t.shape[1])
  with np.errstate(invalid='ignore'):
    hits = o >= t if inclusive else o > t
  return hits.mean(axis=0)


def precision_curve(errors, thresholds=PRECISION_THRESHOLDS) -> np.ndarray:
  """Fraction of frames with (normalised) centre error <= t for each threshold."""
  e = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
  t = np.asarray(thresholds, dtype=np.float64).reshape(1, -1)
  if e.shape[0] == 0:
    return np.zeros(t.shape[1])
  with np.errstate(invalid='ignore'):
    return (e <= t).mean(axis=0)


def curve_auc(curve) -> float:
  """'AUC' as every OPE toolkit reports it: the mean of the curve's points."""
  return float(np.mean(np.asarray(curve, dtype=np.float64)))


def value_at(curve, thresholds, at: float) -> float:
  """The curve at the threshold nearest ``at`` (by index, never float equality)."""
  idx = int(np.argmin(np.abs(np.asarray(thresholds, dtype=np.float64) - at)))
  return float(np.asarray(curve)[idx])


def ao_sr(ious, thresholds=(0.5, 0.75)) -> dict:
  """GOT-10k average overlap and success rates SR_t = fraction with IoU > t."""
  o = np.asarray(ious, dtype=np.float64)
  out = {'ao': float(np.mean(o)) if o.size else float('nan')}
  for t in thresholds:
    with np.errstate(invalid='ignore'):
      out[f'sr_{int(round(t * 100))}'] = (
          float(np.mean(o > t)) if o.size else float('nan')
      )
  return out


def frame_accuracy(ious, present, pred_empty) -> np.ndarray:
  """Per-frame Anti-UAV / MMOT accuracy term.

  Present frames score their IoU (0 if the tracker reported 'empty'); absent
  frames score 1 if the tracker reported 'empty', else 0.
  """
  o = np.nan_to_num(np.asarray(ious, dtype=np.float64), nan=0.0)
  present = np.asarray(present, dtype=bool)
  empty = np.asarray(pred_empty, dtype=bool)
  return np.where(present, np.where(empty, 0.0, o), empty.astype(np.float64))


def mean_accuracy(ious, present, pred_empty, penalty: bool = False) -> float:
  """Sequence accuracy (mACC term).  ``penalty=True`` adds the Anti-UAV README's
  -0.2 * (missed-present / T*)^0.3 term, which no released code implements."""
  acc = frame_accuracy(ious, present, pred_empty)
  if acc.size == 0:
    return float('nan')
  score = float(np.mean(acc))
  if penalty:
    present = np.asarray(present, dtype=bool)
    n_present = int(present.sum())
    if n_present:
      missed = float(np.sum(np.asarray(pred_empty, dtype=bool) & present))
      score -= 0.2 * (missed / n_present) ** 0.3
  return score


def speed_fps(times) -> float:
  """got10k / MMOT speed: mean of 1/t over frames with t > 0; -1 if none."""
  t = np.asarray(times, dtype=np.float64).reshape(-1)
  t = t[np.isfinite(t) & (t > 0)]
  return float(np.mean(1.0 / t)) if t.size else -1.0
