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
from cost_jax.evaluation import metrics as M

__all__ = ['Protocol', 'PROTOCOLS', 'get_protocol']

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
