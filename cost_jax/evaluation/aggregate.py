"""Turns per-frame measures into per-sequence, dataset and per-attribute scores.

Averaging follows the protocol: the mean of per-sequence
curves (every toolkit except GOT-10k val), or curves over the pooled frames of
all sequences (GOT-10k val).  The MATLAB toolkits drop sequences whose curve
sums to <= eps; the MMOT attribute scripts divide attribute sums by *all*
sequences.  Protocol objects are duck-typed (see ``protocols.Protocol``).
"""

from __future__ import annotations

import numpy as np

from cost_jax.evaluation import metrics as M

__all__ = ['CURVES', 'sequence_record', 'summary', 'per_attribute']

CURVES = (
    'success_curve',
    'precision_curve',
    'norm_precision_curve',
    'complete_success_curve',
)
_MATLAB_CURVES = CURVES[
    :3
]  # cAUC is not a MATLAB-toolkit metric: never dropped
_MEASURES = ('iou', 'cle', 'ncle', 'ciou', 'acc')


def _curves(m: dict, p) -> dict:
  return {
      'success_curve': M.success_curve(m['iou'], p.success_thresholds),
      'precision_curve': M.precision_curve(m['cle'], p.precision_thresholds),
      'norm_precision_curve': M.precision_curve(m['ncle'], p.norm_thresholds),
      'complete_success_curve': M.success_curve(
          m['ciou'], p.complete_thresholds
      ),
  }


def _average_overlap(iou: np.ndarray) -> float:
  """Mean IoU over frames not marked invalid (-1); NaN IoU counts as 0."""
  scored = iou[~(iou < 0)]
  return (
      float(np.mean(np.nan_to_num(scored, nan=0.0)))
      if scored.size
      else float('nan')
  )


def sequence_record(measures: dict, p, times=None) -> dict:
  """Everything later averaging needs from one sequence (kept frames only)."""
  keep = measures['keep']
  m = {k: np.asarray(measures[k])[keep] for k in _MEASURES}
  return {
      'measures': m,
      'curves': _curves(m, p),
      'n_frames': int(keep.sum()),
      'macc': float(np.mean(m['acc'])) if m['acc'].size else float('nan'),
      'ao': _average_overlap(m['iou']),
      'times': None
      if times is None
      else np.asarray(times, dtype=np.float64).reshape(-1),
  }


def _mean_curve(
    stack: np.ndarray, drop_zero: bool, divisor: int | None
) -> np.ndarray:
  if drop_zero:
    stack = stack[stack.sum(axis=1) > np.finfo(float).eps]
  if divisor is None:
    divisor = len(stack)
  if divisor == 0:
    return np.full(stack.shape[1], np.nan)
  return stack.sum(axis=0) / divisor


def _scores(curves: dict, p, per_sequence: bool) -> dict:
  succ, prec = curves['success_curve'], curves['precision_curve']
  norm, comp = curves['norm_precision_curve'], curves['complete_success_curve']
  norm_rule = (
      p.seq_norm_precision_score
      if per_sequence and p.seq_norm_precision_score
      else p.norm_precision_score
  )
  return {
      'auc': M.curve_auc(succ),
      'success_rate_50': M.value_at(succ, p.success_thresholds, 0.5),
      'success_rate_75': M.value_at(succ, p.success_thresholds, 0.75),
      'precision': (
          M.value_at(prec, p.precision_thresholds, 20.0)
          if p.precision_score == 'at'
          else M.curve_auc(prec)
      ),
      'norm_precision': (
          M.value_at(norm, p.norm_thresholds, 0.2)
          if norm_rule == 'at'
          else M.curve_auc(norm)
      ),
      'cauc': M.curve_auc(comp),
  }


def _fps(records: list, pooled: bool) -> float | None:
  timed = [r['times'] for r in records if r['times'] is not None]
  if not timed:
    return None
  if pooled:
    fps = M.speed_fps(np.concatenate(timed))
    return fps if fps > 0 else None
  per_seq = np.array([M.speed_fps(t) for t in timed])
  per_seq = per_seq[per_seq > 0]
  return float(per_seq.mean()) if per_seq.size else None


def _nanmean(values) -> float:
  values = np.asarray(values, dtype=np.float64)
  values = values[~np.isnan(values)]
  return float(values.mean()) if values.size else float('nan')


def summary(
    records: list, p, per_sequence: bool = False, n_total: int | None = None
) -> dict:
  """Scores of a set of sequence records under protocol ``p``.

  ``n_total`` replaces the number of sequences as the divisor of the curve
  means (the MMOT attribute convention).  Curves are returned as lists.
  """
  if p.averaging == 'pooled':
    pooled = {
        k: np.concatenate([r['measures'][k] for r in records])
        for k in _MEASURES
    }
    curves = _curves(pooled, p)
    macc = float(np.mean(pooled['acc'])) if pooled['acc'].size else float('nan')
    ao = _average_overlap(pooled['iou'])
  else:
    curves = {
        k: _mean_curve(
            np.stack([r['curves'][k] for r in records]),
            p.drop_zero_curves and k in _MATLAB_CURVES,
            n_total,
        )
        for k in CURVES
    }
    macc = _nanmean([r['macc'] for r in records])
    ao = _nanmean([r['ao'] for r in records])
  out = {
      'protocol': p.name,
      'n_sequences': len(records),
      'n_frames': int(sum(r['n_frames'] for r in records)),
  }
  out.update(_scores(curves, p, per_sequence))
  out.update(
      {'macc': macc, 'ao': ao, 'fps': _fps(records, p.averaging == 'pooled')}
  )
  out.update({k: [float(v) for v in curves[k]] for k in CURVES})
  return out


def per_attribute(sequences: list, records: dict, p) -> dict:
  """Summary per attribute over the sequences where it is set (truthy).

  Attributes with fewer than ``p.min_attribute_sequences`` sequences are
  skipped (MATLAB: 2).  Under ``p.attribute_over_all`` (MMOT) the curve-based
  scores are divided by all sequences, as the toolkit does; ``'scale'`` =
  n_sequences / n_total then says how much that shrinks them.  mACC and AO
  are always plain means (the MMOT toolkit has no attribute mACC).
  """
  attrs = {s.name: getattr(s, 'attributes', None) or {} for s in sequences}
  names = sorted(
      {a for per_seq in attrs.values() for a, v in per_seq.items() if v}
  )
  n_all = len(sequences)
  out = {}
  for attr in names:
    subset = [records[s.name] for s in sequences if attrs[s.name].get(attr)]
    if len(subset) < max(1, p.min_attribute_sequences):
      continue
    entry = summary(subset, p, n_total=n_all if p.attribute_over_all else None)
    entry.update(
        {
            'n_total': n_all,
            'scale': len(subset) / n_all if p.attribute_over_all else 1.0,
        }
    )
    out[attr] = entry
  return out
