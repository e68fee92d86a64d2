"""Named evaluation protocols that reproduce each official toolkit's conventions.

Every rule below was read from the toolkit's source: got10k toolkit 956e7286,
pytracking 7eb9e74b, LaSOT toolkit 95bf38ae, TNL2K toolkit 1a96f6eb, MMOT
toolkit (983632847/Awesome-Multimodal-Object-Tracking) 2d53dcab, and the
OSTrack-lineage copies in JointNLT 94b338e1 and UVLTrack 6ca34055.  A protocol fixes:
thresholds, the IoU form, how absent / invalid ground-truth frames count, how
invalid predictions are repaired, the first frame, length mismatches, which
point of each curve is "the" score, and how sequences are averaged.

Extra metrics a toolkit does not define are still reported under every
protocol with one shared definition: cAUC (MMOT's CIoU success, on the
protocol's frames with the protocol's masking), mACC (MMOT / Anti-UAV
accuracy on the raw predictions) and AO (mean IoU over frames the protocol
does not mark invalid).  All scores are fractions in [0, 1] (pytracking prints
x100).

Inputs: ``pred`` (M, 4) with NaN rows where the tracker reported "target
absent"; ``gt`` (N, 4) with NaN rows where the target is absent (the
``Sequence`` convention); ``visible`` (N,) bool.  ``raw_gt``, when the loader
kept it, is the box array exactly as the annotation file stores it (e.g. the
0,0,0,0 rows of TNL2K / WebUAV-3M / VL-SOT): toolkits score those rows, so
protocols do too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cost_jax import errors
from cost_jax.evaluation import aggregate
from cost_jax.evaluation import metrics as M

__all__ = [
    'Protocol',
    'PROTOCOLS',
    'get_protocol',
    'score_frames',
    'evaluate_sequence',
    'evaluate',
]

_SUCC21 = tuple(M.SUCCESS_THRESHOLDS.tolist())
# pytracking builds torch.arange(0, 1.05, 0.05, float64); on torch 2.13 CPU that differs
# from linspace by one ulp at 0.65 and 0.75 (so its own "== 0.75" OP75 lookup finds nothing).
_PYT_SUCC = list(_SUCC21)
_PYT_SUCC[13], _PYT_SUCC[15] = float(np.nextafter(0.65, 1.0)), float(
    np.nextafter(0.75, 1.0)
)


@dataclasses.dataclass(frozen=True)
class Protocol:
  """One toolkit's scoring rules.  String fields are small enums, listed inline."""

  name: str
  toolkit: str
  success_thresholds: tuple = _SUCC21
  precision_thresholds: tuple = tuple(M.PRECISION_THRESHOLDS.tolist())
  norm_thresholds: tuple = tuple(M.NORM_PRECISION_THRESHOLDS.tolist())
  complete_thresholds: tuple = _SUCC21
  iou: str = (
      'got10k'  # 'got10k' (union+eps, clip) | 'plain' | 'pixel_inclusive'
  )
  norm_divisor: str = (
      'gt'  # 'gt' | 'gt_eps' | 'max1' (metrics.normalized_center_error)
  )
  precision_score: str = (
      'at'  # 'at' = value at 20 px | 'mean' = mean of the 51 points
  )
  norm_precision_score: str = (
      'at'  # 'at' = value at 0.20 | 'mean' = mean of the 51 points
  )
  seq_norm_precision_score: str | None = (
      None  # per-sequence override (MMOT uses 'at' there)
  )
  nan_gt_as_zero: bool = (
      False  # score NaN GT rows as the 0,0,0,0 box the files store
  )
  masking: str = (
      'none'  # 'none' | 'matlab' | 'pytracking' | 'exclude_invisible'
  )
  valid_gt: str = (
      'all_positive'  # pytracking: 'all_positive' (x,y,w,h > 0) | 'wh_positive'
  )
  invalid_center: str = (
      'fail'  # pytracking CLE on invalid frames: 'fail' (Inf) | 'pass' (-1)
  )
  invisible_fails_center: bool = (
      False  # pytracking 'lasot': CLE, norm CLE = Inf if invisible
  )
  pred_fix: str = 'none'  # 'none' | 'matlab' | 'pytracking'
  length: str = (
      'error'  # 'error' | 'truncate' (both) | 'truncate_pred' | 'pad_zero'
  )
  first_frame: str = 'gt'  # 'gt' (prediction := GT) | 'exclude' | 'keep'
  clip_to_image: bool = (
      False  # got10k GOT-10k val: clip both boxes to the image
  )
  averaging: str = (
      'sequence'  # 'sequence' (mean of per-sequence curves) | 'pooled' (frames)
  )
  drop_zero_curves: bool = (
      False  # MATLAB: drop sequences whose curve sums to <= eps
  )
  attribute_over_all: bool = (
      False  # MMOT: attribute means divide by ALL sequences
  )
  min_attribute_sequences: int = (
      1  # MATLAB skips attributes with fewer than 2 sequences
  )
  macc_presence: str = (
      'visible'  # 'visible' | 'gt_nonzero' (MMOT: absent = all-zero GT box)
  )
  description: str = ''


_MMOT = dict(
    toolkit='MMOT_Evaluation_Toolkit (got10k fork + Anti-UAV accuracy) @2d53dcab',
    iou='got10k',
    norm_divisor='gt_eps',
    precision_score='at',
    norm_precision_score='mean',
    seq_norm_precision_score='at',
    nan_gt_as_zero=True,
    first_frame='gt',
    attribute_over_all=True,
    macc_presence='gt_nonzero',
)
_MATLAB = dict(
    success_thresholds=tuple(M.matlab_colon(0.0, 0.05, 1.0).tolist()),
    iou='pixel_inclusive',
    norm_divisor='gt',
    masking='matlab',
    pred_fix='matlab',
    length='truncate_pred',
    first_frame='gt',
    drop_zero_curves=True,
    min_attribute_sequences=2,
)
_PYT = dict(
    toolkit='pytracking pytracking/analysis (extract_results, plot_results) @7eb9e74b',
    success_thresholds=tuple(_PYT_SUCC),
    iou='pixel_inclusive',
    norm_divisor='gt',
    masking='pytracking',
    pred_fix='pytracking',
    length='pad_zero',
    first_frame='gt',
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol(
            'vlsot500',
            length='truncate',
            **_MMOT,
            description=(
                'VL-SOT230/270 scripts: no masking, 0,0,0,0 GT fails, P@20px, P_norm = mean of 51 '
                'points over [0, 0.5], cAUC, mACC; length mismatch truncated; attributes / all seqs'
            ),
        ),
        Protocol(
            'webuav3m',
            length='error',
            **_MMOT,
            description=(
                'WebUAV-3M scripts: as vlsot500 but equal lengths are asserted'
            ),
        ),
        Protocol(
            'lasot',
            toolkit='LaSOT_Evaluation_Toolkit (MATLAB) @95bf38ae',
            **_MATLAB,
            precision_score='at',
            norm_precision_score='at',
            description=(
                'absent frames fail (kept in the denominator), GT valid iff x,y,w,h > 0 else '
                'IoU fails and CLE passes; invalid predictions take the previous box; '
                "ranking 'threshold' for precision (P@20, P_norm@0.20), AUC for success"
            ),
        ),
        Protocol(
            'tnl2k',
            toolkit='TNL2K_evaluation_toolkit (MATLAB) @1a96f6eb',
            **_MATLAB,
            precision_score='mean',
            norm_precision_score='mean',
            description=(
                "as lasot, with the TNL2K script's ranking_type='AUC': precision and normalised "
                'precision are the mean of their 51 points'
            ),
        ),
        Protocol(
            'otb',
            toolkit='got10k ExperimentOTB (GitHub) @956e7286',
            iou='got10k',
            norm_divisor='max1',
            norm_precision_score='mean',
            nan_gt_as_zero=True,
            length='truncate',
            description=(
                'no masking, P@20px; P_norm as got10k ExperimentLaSOT (max(1, GT w/h), mean '
                'of 51 points)'
            ),
        ),
        Protocol(
            'pytracking',
            **_PYT,
            description=(
                'valid = x,y,w,h > 0 and visible; invalid frames fail IoU and CLE but pass norm CLE; '
                'zero-size predictions take the previous box, short results zero-padded; '
                'P@20px, P_norm@0.20'
            ),
        ),
        Protocol(
            'pytracking_lasot',
            **{**_PYT, 'length': 'truncate_pred'},
            invisible_fails_center=True,
            description="pytracking with dataset name 'lasot': invisible frames fail norm CLE",
        ),
        Protocol(
            'pytracking_uav',
            **_PYT,
            invalid_center='pass',
            description="pytracking with dataset name 'uav': invalid frames pass CLE",
        ),
        Protocol(
            'ostrack',
            **{
                **_PYT,
                'toolkit': 'OSTrack-lineage lib/test/analysis (JointNLT '
                '94b338e1, UVLTrack 6ca34055, All-in-One ab786d25)',
            },
            valid_gt='wh_positive',
            description='pytracking with validity w, h > 0 only (x or y <= 0 allowed)',
        ),
        Protocol(
            'got10k',
            toolkit='got10k ExperimentGOT10k (val) @956e7286',
            success_thresholds=tuple(M.SUCCESS_THRESHOLDS_101.tolist()),
            iou='got10k',
            masking='exclude_invisible',
            first_frame='exclude',
            clip_to_image=True,
            averaging='pooled',
            description=(
                'AO / SR over frames 2..N with the target visible, pooled over all '
                'sequences; 101 thresholds; boxes clipped to the image when its size is known'
            ),
        ),
    ]
}


def get_protocol(protocol) -> Protocol:
  """A ``Protocol`` from its name (or the protocol itself)."""
  if isinstance(protocol, Protocol):
    return protocol
  try:
    return PROTOCOLS[protocol]
  except KeyError:
    raise errors.InvalidValue(
        f'unknown protocol {protocol!r}', f'choose from {sorted(PROTOCOLS)}'
    ) from None


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
