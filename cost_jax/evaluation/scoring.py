"""Scoring tracker results under a `Protocol` (cost_jax.evaluation.protocols):
per-frame measures with the protocol's repair, masking and first-frame rules
(`score_frames`), one sequence (`evaluate_sequence`) and a dataset with its
per-attribute breakdown (`evaluate`). Inputs follow the conventions stated
in protocols.py.
"""

from __future__ import annotations

import numpy as np

from cost_jax import errors
from cost_jax.evaluation import aggregate
from cost_jax.evaluation import metrics as M
from cost_jax.evaluation.protocols import Protocol, get_protocol

__all__ = ['score_frames', 'evaluate_sequence', 'evaluate']


def _fit_lengths(pred, gt, visible, absent, mode: str, name: str):
  """Applies the toolkit's length-mismatch rule, except zero padding (done after repair)."""
  m, n = len(pred), len(gt)
  if m == n:
    return pred, gt, visible, absent
  if mode == 'error' or (mode == 'truncate_pred' and m < n):
    need = (
        'equal lengths'
        if mode == 'error'
        else 'at least as many boxes as frames'
    )
    raise errors.InvalidValue(
        f'{name}: the results have {m} boxes but the ground truth '
        f'has {n} frames (protocol rule: {need})',
        'write one box per frame',
    )
  if m > n:
    return pred[:n], gt, visible, absent
  if mode == 'truncate':
    return pred, gt[:m], visible[:m], absent[:m]
  return pred, gt, visible, absent  # 'pad_zero': padded after the repair step


def _forward_fill(boxes: np.ndarray, replace: np.ndarray) -> np.ndarray:
  """Rows flagged in ``replace`` take the previous row (after its own replacement)."""
  replace = replace.copy()
  replace[0] = False
  idx = np.where(replace, 0, np.arange(len(boxes)))
  return boxes[np.maximum.accumulate(idx)]


def _repair_predictions(pred, gt, protocol: Protocol, name: str) -> np.ndarray:
  """Invalid-prediction rules of the MATLAB toolkits and pytracking."""
  n = min(len(pred), len(gt))
  gt_has_nan = np.zeros(len(pred), bool)
  gt_has_nan[:n] = np.isnan(gt[:n]).any(axis=1)
  with np.errstate(invalid='ignore'):
    if protocol.pred_fix == 'matlab':
      bad = np.isnan(pred).any(axis=1) | (pred[:, 2] <= 0) | (pred[:, 3] <= 0)
      return _forward_fill(pred, bad & ~gt_has_nan)
    if protocol.pred_fix == 'pytracking':
      broken = np.isnan(pred).any(axis=1) | (pred[:, 2:] < 0).any(axis=1)
      if broken.any():
        raise errors.InvalidValue(
            f'{name}: pytracking rejects results with NaN or negative size (first at '
            f'frame {int(np.argmax(broken))}); "target absent" predictions cannot be '
            'scored by this protocol',
            'score them with another --protocol',
        )
      return _forward_fill(pred, (pred[:, 2:] == 0).any(axis=1) & ~gt_has_nan)
  return pred


def _valid_gt(gt: np.ndarray, rule: str) -> np.ndarray:
  with np.errstate(invalid='ignore'):
    if rule == 'wh_positive':
      return (gt[:, 2] > 0) & (gt[:, 3] > 0)
    return np.all(gt > 0, axis=1)


def _overlaps(pred, gt, protocol: Protocol, image_size) -> np.ndarray:
  if protocol.iou == 'got10k':
    if protocol.clip_to_image and image_size is not None:
      pred, gt = M.clip_to_image(pred, image_size), M.clip_to_image(
          gt, image_size
      )
    return M.iou(pred, gt, union_eps=np.finfo(float).eps, clip=True)
  return M.iou(pred, gt, pixel_inclusive=protocol.iou == 'pixel_inclusive')


def _apply_masking(m: dict, gt, visible, absent, protocol: Protocol) -> None:
  """Sets invalid / absent frames to the values each toolkit assigns (in place)."""
  inf = np.inf
  if protocol.masking == 'matlab':
    valid = _valid_gt(gt, 'all_positive')
    m['iou'][~valid], m['cle'][~valid], m['ncle'][~valid] = -1.0, -1.0, -1.0
    m['iou'][absent], m['cle'][absent], m['ncle'][absent] = -1.0, inf, inf
  elif protocol.masking == 'pytracking':
    valid = _valid_gt(gt, protocol.valid_gt) & visible
    m['iou'][~valid], m['ncle'][~valid] = -1.0, -1.0
    m['cle'][~valid] = -1.0 if protocol.invalid_center == 'pass' else inf
    if protocol.invisible_fails_center:
      m['cle'][~visible], m['ncle'][~visible] = inf, inf
  elif protocol.masking == 'exclude_invisible':
    m['keep'] &= visible
  m['ciou'][m['iou'] < 0] = np.nan  # cAUC fails wherever the protocol fails IoU


def score_frames(
    pred,
    gt,
    visible,
    protocol,
    *,
    raw_gt=None,
    image_size=None,
    name: str = 'sequence',
) -> dict:
  """Per-frame measures under ``protocol``: iou, cle, ncle, ciou, acc and a ``keep`` mask
  (frames in the denominator).  Failed frames hold -1 / Inf / NaN as the toolkit does.
  """
  p = get_protocol(protocol)
  marked = M.as_boxes(gt)
  scored = M.as_boxes(raw_gt) if raw_gt is not None else marked.copy()
  visible = np.asarray(visible, dtype=bool).reshape(-1)
  if not (len(marked) == len(scored) == len(visible)) or len(marked) == 0:
    raise ValueError(
        f'{name}: gt ({len(marked)}), raw_gt ({len(scored)}) and visible '
        f'({len(visible)}) must have the same non-zero length'
    )
  absent = np.isnan(marked).any(axis=1)
  pred, scored, visible, absent = _fit_lengths(
      M.as_boxes(pred).copy(), scored, visible, absent, p.length, name
  )
  if p.nan_gt_as_zero:
    scored = np.nan_to_num(scored, nan=0.0)
  raw_pred = pred.copy()
  pred = _repair_predictions(pred, scored, p, name)
  if len(pred) < len(scored):  # 'pad_zero' (pytracking)
    pad = np.zeros((len(scored) - len(pred), 4))
    pred, raw_pred = np.concatenate([pred, pad]), np.concatenate(
        [raw_pred, pad]
    )
  if p.first_frame == 'gt':
    pred[0] = scored[0]
  gt0 = np.nan_to_num(scored, nan=0.0)
  m = {
      'iou': _overlaps(pred, scored, p, image_size),
      'cle': M.center_error(pred, scored),
      'ncle': M.normalized_center_error(pred, scored, p.norm_divisor),
      'ciou': M.ciou(pred, gt0),
      'keep': np.ones(len(scored), bool),
  }
  _apply_masking(m, scored, visible, absent, p)
  if p.first_frame == 'exclude':
    m['keep'][0] = False
  present = (
      visible if p.macc_presence == 'visible' else ~np.all(gt0 == 0, axis=1)
  )
  m['acc'] = M.frame_accuracy(
      M.iou_antiuav(np.nan_to_num(raw_pred), gt0),
      present,
      np.isnan(raw_pred).any(axis=1),
  )
  return m


def _sequence_inputs(seq, results: dict):
  """(pred, gt, visible, raw_gt, image_size) of a duck-typed sequence."""
  extra = getattr(seq, 'extra', None) or {}
  visible = getattr(seq, 'visible', None)
  if visible is None:
    visible = ~np.isnan(np.asarray(seq.boxes, dtype=np.float64)).any(axis=1)
  image_size = getattr(seq, 'image_size', None)
  if image_size is None:
    image_size = extra.get('image_size')
  return (
      results[seq.name],
      seq.boxes,
      visible,
      extra.get('raw_boxes'),
      image_size,
  )


def evaluate_sequence(
    pred,
    gt,
    visible,
    protocol,
    *,
    raw_gt=None,
    image_size=None,
    times=None,
    name: str = 'sequence',
) -> dict:
  """Scores one sequence: AUC, SR50/75, precision, P_norm, cAUC, mACC, AO, curves."""
  p = get_protocol(protocol)
  measures = score_frames(
      pred, gt, visible, p, raw_gt=raw_gt, image_size=image_size, name=name
  )
  record = aggregate.sequence_record(measures, p, times)
  return aggregate.summary([record], p, per_sequence=True)


def evaluate(
    results: dict,
    sequences,
    protocol,
    attributes: bool = True,
    times: dict | None = None,
) -> dict:
  """Scores a tracker's ``results`` (``{seq_name: (N, 4) boxes}``) on ``sequences``.

  ``sequences`` are duck-typed: ``.name``, ``.boxes``, ``.visible``,
  ``.attributes`` and optionally ``.extra['raw_boxes']`` and an image size (W, H)
  as ``.image_size`` or ``.extra['image_size']`` (only the got10k protocol uses it).
  ``times`` optionally maps names to per-frame seconds.  A list of (N, 4)
  arrays is several runs of one sequence (got10k repetitions): their frames
  are scored together, as ``ExperimentGOT10k`` concatenates the runs' IoUs.  Returns
  ``{'protocol', 'toolkit', 'thresholds', 'overall', 'per_sequence', 'per_attribute'}``.
  """
  p = get_protocol(protocol)
  sequences = list(sequences)
  missing = [s.name for s in sequences if s.name not in results]
  if missing:
    raise KeyError(
        f'no results for {len(missing)} of {len(sequences)} sequences, e.g. '
        f'{missing[:5]}'
    )
  records = {}
  for seq in sequences:
    pred, gt, visible, raw, size = _sequence_inputs(seq, results)
    runs = pred if isinstance(pred, (list, tuple)) else [pred]
    per_run = [
        score_frames(
            r, gt, visible, p, raw_gt=raw, image_size=size, name=seq.name
        )
        for r in runs
    ]
    m = {k: np.concatenate([r[k] for r in per_run]) for k in per_run[0]}
    records[seq.name] = aggregate.sequence_record(
        m, p, (times or {}).get(seq.name)
    )
  out = {
      'protocol': p.name,
      'toolkit': p.toolkit,
      'thresholds': {
          'success': list(p.success_thresholds),
          'precision': list(p.precision_thresholds),
          'norm_precision': list(p.norm_thresholds),
          'complete_success': list(p.complete_thresholds),
      },
      'overall': aggregate.summary(list(records.values()), p),
      'per_sequence': {
          k: aggregate.summary([r], p, per_sequence=True)
          for k, r in records.items()
      },
      'per_attribute': {},
  }
  if attributes:
    out['per_attribute'] = aggregate.per_attribute(sequences, records, p)
  return out
