"""Metrics and protocols against hand-computed values.

No jax / tensorflow / torch: the evaluation package must score results anywhere.
"""

import ast
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pytest

from cost_jax import analyze
from cost_jax.evaluation import metrics as M
from cost_jax.evaluation import protocols as P
from cost_jax.evaluation.scoring import evaluate, evaluate_sequence

NAN4 = [np.nan] * 4


# --------------------------------------------------------------------------- metrics


def _imported_modules(path):
  tree = ast.parse(open(path).read())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (a.name.split('.')[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module.split('.')[0]


def test_evaluation_imports_no_ml_framework():
  folder = os.path.dirname(M.__file__)
  files = [
      os.path.join(folder, f) for f in os.listdir(folder) if f.endswith('.py')
  ]
  for path in files + [analyze.__file__]:
    banned = set(_imported_modules(path)) & {
        'jax',
        'flax',
        'tensorflow',
        'torch',
    }
    assert not banned, f'{path} imports {banned}'


def test_iou_basic_cases():
  a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
  b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]], float)
  np.testing.assert_allclose(M.iou(a, b), [1.0, 50 / 150, 0.0])


def test_pixel_inclusive_iou_equals_continuous():
  # LaSOT calc_rect_int.m: right = x + w - 1 and width + 1 cancel.
  rng = np.random.default_rng(0)
  a = np.concatenate(
      [rng.uniform(0, 50, (200, 2)), rng.uniform(0.5, 30, (200, 2))], 1
  )
  b = np.concatenate(
      [rng.uniform(0, 50, (200, 2)), rng.uniform(0.5, 30, (200, 2))], 1
  )
  np.testing.assert_allclose(
      M.iou(a, b, pixel_inclusive=True), M.iou(a, b), atol=1e-12
  )


def test_iou_got10k_eps_and_clip_on_empty_boxes():
  zero = np.zeros((1, 4))
  assert np.isnan(M.iou(zero, zero)[0])  # 0 / 0 without eps
  assert M.iou(zero, zero, union_eps=np.finfo(float).eps, clip=True)[0] == 0.0
  assert M.iou_antiuav(zero, zero)[0] == 0.0  # degenerate overlap -> 0


def test_centre_errors():
  gt = np.array([[0, 0, 10, 20]], float)
  pred = np.array([[3, 4, 10, 20]], float)
  assert M.center_error(pred, gt)[0] == pytest.approx(5.0)
  for conv in ('minus_one', 'half', 'plus_one'):  # the constant cancels
    d = M.centers(pred, conv) - M.centers(gt, conv)
    assert np.hypot(*d[0]) == pytest.approx(5.0)
  # offsets (3, 4) / (10, 20) = (0.3, 0.2)
  assert M.normalized_center_error(pred, gt)[0] == pytest.approx(
      math.hypot(0.3, 0.2)
  )
  assert M.normalized_center_error(pred, gt, 'gt_eps')[0] == pytest.approx(
      math.hypot(0.3, 0.2)
  )
  tiny = np.array([[0, 0, 0.5, 0.25]], float)  # got10k divides by max(1, w/h)
  assert M.normalized_center_error(tiny + [3, 4, 0, 0], tiny, 'max1')[
      0
  ] == pytest.approx(5.0)


def test_ciou_hand_cases():
  assert M.ciou([[3, 4, 5, 6]], [[3, 4, 5, 6]])[0] == pytest.approx(1.0)
  # same aspect: IoU 2/6, centre distance^2 1, enclosing diagonal^2 3^2 + 2^2
  assert M.ciou([[0, 0, 2, 2]], [[1, 0, 2, 2]])[0] == pytest.approx(
      1 / 3 - 1 / 13
  )
  # different aspect: IoU 0.5, rho^2 1, c^2 = 2^2 + 4^2, v from atan(2/4) vs atan(2/2)
  v = 4 / math.pi**2 * (math.atan(2 / 4) - math.atan(1.0)) ** 2
  alpha = v / (1 - 0.5 + v + np.finfo(float).eps)
  assert M.ciou([[0, 0, 2, 2]], [[0, 0, 2, 4]])[0] == pytest.approx(
      0.5 - 1 / 20 - alpha * v
  )
  assert (
      M.ciou([[0, 0, 2, 2]], [[50, 50, 2, 2]])[0] == 0.0
  )  # negative -> clipped to 0
  assert np.isnan(
      M.ciou([[0, 0, 2, 2]], [[0, 0, 0, 0]])[0]
  )  # absent GT never passes


def test_worked_example_threshold_conventions():
  # Fact sheet A.2 worked example, IoUs [1.0, 0.8, 0.5, 0.3, 0.0].
  ious = np.array([1.0, 0.8, 0.5, 0.3, 0.0])
  assert np.mean(ious) == pytest.approx(0.52)
  assert M.curve_auc(M.success_curve(ious)) == pytest.approx(0.4952, abs=1e-4)
  auc101 = M.curve_auc(M.success_curve(ious, M.SUCCESS_THRESHOLDS_101))
  assert auc101 == pytest.approx(0.5149, abs=1e-4)
  incl = M.success_curve(ious, inclusive=True)  # TrackingNet: >= and trapezoid
  assert np.trapezoid(incl, M.SUCCESS_THRESHOLDS) == pytest.approx(0.53)
  assert M.value_at(
      M.success_curve(ious), M.SUCCESS_THRESHOLDS, 0.5
  ) == pytest.approx(0.4)
  assert M.value_at(incl, M.SUCCESS_THRESHOLDS, 0.5) == pytest.approx(0.6)
  assert M.ao_sr(ious) == pytest.approx(
      {'ao': 0.52, 'sr_50': 0.4, 'sr_75': 0.4}
  )


def test_antiuav_worked_example():
  # Fact sheet D: v = [1,1,1,0,0]; IoU .8, .6; empty on frames 3 (visible) and 4 (absent).
  ious = [0.8, 0.6, 0.0, 0.0, 0.0]
  present = [1, 1, 1, 0, 0]
  empty = [0, 0, 1, 1, 0]
  assert M.mean_accuracy(ious, present, empty) == pytest.approx(0.48)
  assert M.mean_accuracy(ious, present, empty, penalty=True) == pytest.approx(
      0.33616, abs=1e-5
  )


def test_threshold_grids():
  c = M.matlab_colon(0.0, 0.05, 1.0)
  assert len(c) == 21 and c[10] == 0.5 and c[15] == 0.75 and c[17] == 0.85
  pyt = P.PROTOCOLS['pytracking'].success_thresholds
  assert len(pyt) == 21 and pyt[15] == np.nextafter(0.75, 1) and pyt[10] == 0.5
  assert len(P.PROTOCOLS['got10k'].success_thresholds) == 101
  assert P.PROTOCOLS['vlsot500'].precision_thresholds[20] == 20.0


def test_speed():
  assert M.speed_fps([0.1, 0.05, 0.0, -1]) == pytest.approx(15.0)
  assert M.speed_fps([0.0]) == -1.0


# --------------------------------------------------------------------------- protocols


def _case():
  """5 frames: forced first frame, exact, 3-px shift, two absent frames.

  GT w=8, h=10 so that normalised errors never sit on the 0.01 grid.
  f0 garbage prediction (forced to GT); f1 exact (IoU 1); f2 shifted 3 px
  (IoU 50/110, CLE 3, norm CLE 0.375); f3 absent, prediction centred 14.1 px
  from the (-0.5, -0.5) centre of a 0,0,0,0 GT; f4 absent, empty prediction.
  """
  gt = np.array(
      [[10, 10, 8, 10], [12, 10, 8, 10], [14, 10, 8, 10], NAN4, NAN4], float
  )
  raw = np.nan_to_num(gt)  # the file stores 0,0,0,0 on absent frames
  pred = np.array(
      [[0, 0, 5, 5], [12, 10, 8, 10], [17, 10, 8, 10], [5, 5, 10, 10], NAN4],
      float,
  )
  visible = np.array([1, 1, 1, 0, 0], bool)
  return pred, gt, visible, raw


IOU2 = 50 / 110
AUC_3_2 = 10 / 21  # 3/5 for thresholds 0..0.45, 2/5 for 0.5..0.95, 0 at 1
NORM_MEAN = 23 / 51  # 2/5 for 0..0.37, 3/5 for 0.38..0.50
CIOU2 = IOU2 - 9 / (11**2 + 10**2)
CAUC = (9 * 0.6 + 11 * 0.4) / 21
MACC = (
    0 + 1 + IOU2 + 0 + 1
) / 5  # raw frame 0 prediction scores 0; empty on absent f4 scores 1


def test_vlsot500_mmot_conventions():
  pred, gt, visible, raw = _case()
  r = evaluate_sequence(pred, gt, visible, 'vlsot500', raw_gt=raw)
  assert r['protocol'] == 'vlsot500'
  assert r['auc'] == pytest.approx(AUC_3_2)
  assert r['success_rate_50'] == pytest.approx(0.4)
  assert r['precision'] == pytest.approx(
      0.8
  )  # absent frame passes CLE by accident
  assert r['norm_precision'] == pytest.approx(
      0.4
  )  # per-sequence entry: value at 0.20
  assert r['cauc'] == pytest.approx(CAUC)
  assert CIOU2 == pytest.approx(0.41382, abs=1e-5)
  assert r['macc'] == pytest.approx(MACC)
  # NaN GT without the raw file rows scores the same (NaN -> 0,0,0,0)
  r2 = evaluate_sequence(pred, gt, visible, 'vlsot500')
  assert {
      k: r2[k] for k in ('auc', 'precision', 'macc', 'cauc')
  } == pytest.approx({k: r[k] for k in ('auc', 'precision', 'macc', 'cauc')})


def test_mmot_overall_norm_precision_is_area():
  pred, gt, visible, raw = _case()
  seq = FakeSeq('s', gt, visible, extra={'raw_boxes': raw})
  rep = evaluate({'s': pred}, [seq], 'vlsot500')
  assert rep['overall']['norm_precision'] == pytest.approx(NORM_MEAN)
  assert rep['per_sequence']['s']['norm_precision'] == pytest.approx(0.4)
  assert rep['protocol'] == rep['overall']['protocol'] == 'vlsot500'


def test_lasot_and_tnl2k_matlab_conventions():
  pred, gt, visible, raw = _case()
  r = evaluate_sequence(pred, gt, visible, 'lasot', raw_gt=raw)
  assert r['auc'] == pytest.approx(AUC_3_2)
  assert r['precision'] == pytest.approx(
      0.6
  )  # absent frames fail, stay in denominator
  assert r['norm_precision'] == pytest.approx(0.4)
  assert r['cauc'] == pytest.approx(CAUC)
  assert r['macc'] == pytest.approx(MACC)
  t = evaluate_sequence(pred, gt, visible, 'tnl2k', raw_gt=raw)
  assert t['auc'] == pytest.approx(AUC_3_2)
  assert t['precision'] == pytest.approx(
      (3 * 0.4 + 48 * 0.6) / 51
  )  # ranking 'AUC'
  assert t['norm_precision'] == pytest.approx(NORM_MEAN)


def test_matlab_invalid_gt_passes_precision_and_fails_success():
  # A visible frame whose GT has x <= 0: IoU = -1 (fail), CLE = -1 (pass).
  gt = np.array([[10, 10, 8, 10], [0, 10, 8, 10]], float)
  pred = np.array([[10, 10, 8, 10], [60, 60, 8, 10]], float)
  r = evaluate_sequence(pred, gt, [1, 1], 'lasot')
  assert r['precision'] == 1.0 and r['norm_precision'] == 1.0
  assert r['success_rate_50'] == 0.5
  o = evaluate_sequence(
      pred, gt, [1, 1], 'ostrack'
  )  # x <= 0 allowed: scored normally
  assert o['success_rate_50'] == 0.5 and o['precision'] == 0.5


def test_matlab_repairs_invalid_predictions_with_previous_box():
  gt = np.array([[10, 10, 8, 10]] * 4, float)
  pred = np.array(
      [[10, 10, 8, 10], [10, 10, 8, 10], NAN4, [0, 0, -3, 5]], float
  )
  assert evaluate_sequence(pred, gt, [1] * 4, 'lasot')['success_rate_50'] == 1.0
  assert (
      evaluate_sequence(pred, gt, [1] * 4, 'vlsot500')['success_rate_50'] == 0.5
  )


def test_pytracking_family():
  pred, gt, visible, raw = _case()
  with pytest.raises(ValueError, match='NaN'):
    evaluate_sequence(pred, gt, visible, 'pytracking', raw_gt=raw)
  pred[4] = [
      30,
      10,
      0,
      10,
  ]  # zero width -> previous box (GT row is not NaN in the file)
  r = evaluate_sequence(pred, gt, visible, 'pytracking', raw_gt=raw)
  assert r['auc'] == pytest.approx(AUC_3_2)
  assert r['precision'] == pytest.approx(0.6)  # invalid frames: CLE = Inf
  assert r['norm_precision'] == pytest.approx(
      0.8
  )  # invalid frames: norm CLE = -1 passes
  assert evaluate_sequence(pred, gt, visible, 'pytracking_lasot', raw_gt=raw)[
      'norm_precision'
  ] == pytest.approx(0.4)
  assert (
      evaluate_sequence(pred, gt, visible, 'pytracking_uav', raw_gt=raw)[
          'precision'
      ]
      == 1.0
  )
  # NaN GT (no raw file rows) is an invalid frame, not an error
  assert evaluate_sequence(pred, gt, visible, 'pytracking')[
      'auc'
  ] == pytest.approx(AUC_3_2)


def test_otb_got10k_experiment():
  pred, gt, visible, raw = _case()
  r = evaluate_sequence(pred, gt, visible, 'otb', raw_gt=raw)
  assert r['auc'] == pytest.approx(AUC_3_2) and r['precision'] == pytest.approx(
      0.8
  )
  assert r['norm_precision'] == pytest.approx(
      NORM_MEAN
  )  # max(1, w) divisor, mean of 51


def test_got10k_excludes_first_and_invisible_frames_and_pools():
  pred, gt, visible, raw = _case()
  r = evaluate_sequence(pred, gt, visible, 'got10k', raw_gt=raw)
  assert r['n_frames'] == 2  # frames 1 and 2
  assert r['ao'] == pytest.approx((1 + IOU2) / 2)
  assert r['auc'] == pytest.approx(
      73 / 101
  )  # 1.0 for t <= 0.45, 0.5 for 0.46..0.99
  assert r['success_rate_50'] == 0.5
  # pooled over frames, not averaged over sequences
  g = np.array([[10, 10, 8, 10]] * 5, float)
  bad = g + [40, 0, 0, 0]
  seqs = [FakeSeq('a', g[:2], [1, 1]), FakeSeq('b', g, [1] * 5)]
  rep = evaluate(
      {'a': g[:2], 'b': np.concatenate([g[:1], bad[1:]])}, seqs, 'got10k'
  )
  assert rep['overall']['ao'] == pytest.approx(
      1 / 5
  )  # 1 good of 5 pooled frames
  assert evaluate(
      {'a': g[:2], 'b': np.concatenate([g[:1], bad[1:]])}, seqs, 'otb'
  )['overall']['auc'] == pytest.approx((20 / 21 + 20 / 21 / 5) / 2)


def test_image_bound_clipping_for_got10k():
  gt = np.array([[0, 0, 10, 10], [90, 0, 10, 10]], float)
  pred = np.array(
      [[0, 0, 10, 10], [90, 0, 20, 10]], float
  )  # half outside a 100-px image
  assert evaluate_sequence(pred, gt, [1, 1], 'got10k')['ao'] == pytest.approx(
      0.5
  )
  assert (
      evaluate_sequence(pred, gt, [1, 1], 'got10k', image_size=(100, 50))['ao']
      == 1.0
  )


def test_prediction_of_all_zeros():
  gt = np.array([[100, 100, 10, 10]] * 4, float)
  zeros = np.zeros((4, 4))
  for name in ('vlsot500', 'lasot', 'pytracking', 'otb'):
    r = evaluate_sequence(zeros, gt, [1] * 4, name)
    assert r['auc'] == pytest.approx(
        20 / 21 / 4
    ), name  # only the forced first frame
    assert r['precision'] == pytest.approx(0.25), name
    assert r['macc'] == 0.0, name  # a box, not "absent": IoU 0
  assert evaluate_sequence(zeros, gt, [1] * 4, 'vlsot500')[
      'cauc'
  ] == pytest.approx(20 / 21 / 4)


def test_length_rules():
  gt = np.array([[10, 10, 8, 10]] * 4, float)
  short, long = gt[:3], np.concatenate([gt, gt])
  assert (
      evaluate_sequence(short, gt, [1] * 4, 'vlsot500')['n_frames'] == 3
  )  # truncate both
  with pytest.raises(ValueError, match='3 boxes but the ground truth has 4'):
    evaluate_sequence(short, gt, [1] * 4, 'webuav3m')
  with pytest.raises(ValueError):
    evaluate_sequence(short, gt, [1] * 4, 'lasot')
  assert evaluate_sequence(long, gt, [1] * 4, 'lasot')['auc'] == pytest.approx(
      20 / 21
  )
  padded = evaluate_sequence(short, gt, [1] * 4, 'pytracking')  # zero-padded
  assert padded['n_frames'] == 4 and padded['auc'] == pytest.approx(
      20 / 21 * 3 / 4
  )


@dataclass
class FakeSeq:
  name: str
  boxes: np.ndarray
  visible: np.ndarray
  attributes: dict = field(default_factory=dict)
  extra: dict = field(default_factory=dict)

  def __post_init__(self):
    self.boxes = np.asarray(self.boxes, float)
    self.visible = np.asarray(self.visible, bool)
    self.frames = [f'{i:06d}.jpg' for i in range(len(self.boxes))]


def _three_sequences():
  g = np.array([[10, 10, 8, 10]] * 4, float)
  far = g + [50, 0, 0, 0]
  seqs = [
      FakeSeq('good', g, [1] * 4, {'FM': True, 'BC': True}),
      FakeSeq('half', g, [1] * 4, {'FM': True}),
      FakeSeq('bad', g, [1] * 4, {'FM': False, 'LR': True}),
  ]
  res = {'good': g, 'half': np.concatenate([g[:2], far[2:]]), 'bad': far}
  return seqs, res


def test_per_attribute_breakdown():
  seqs, res = _three_sequences()
  auc = {'good': 20 / 21, 'half': 20 / 21 / 2, 'bad': 20 / 21 / 4}
  rep = evaluate(res, seqs, 'pytracking')
  per = rep['per_attribute']
  assert set(per) == {'FM', 'BC', 'LR'}
  assert per['FM']['n_sequences'] == 2
  assert per['FM']['auc'] == pytest.approx((auc['good'] + auc['half']) / 2)
  assert per['LR']['auc'] == pytest.approx(auc['bad'])
  assert per['FM']['protocol'] == 'pytracking'
  assert rep['overall']['auc'] == pytest.approx(sum(auc.values()) / 3)
  # MMOT divides attribute sums by all sequences
  mm = evaluate(res, seqs, 'vlsot500')['per_attribute']
  assert mm['FM']['auc'] == pytest.approx((auc['good'] + auc['half']) / 3)
  assert mm['FM']['scale'] == pytest.approx(2 / 3)
  # MATLAB skips attributes with fewer than 2 sequences
  assert set(evaluate(res, seqs, 'lasot')['per_attribute']) == {'FM'}
  assert evaluate(res, seqs, 'lasot', attributes=False)['per_attribute'] == {}


def test_matlab_drops_all_zero_sequences():
  g = np.array([[10, 10, 8, 10]] * 4, float)
  g_bad0 = g.copy()
  g_bad0[0, 0] = 0.0  # invalid first-frame GT: IoU -1 even when forced
  seqs = [FakeSeq('ok', g, [1] * 4), FakeSeq('zero', g_bad0, [1] * 4)]
  res = {'ok': g, 'zero': g_bad0 + [50, 0, 0, 0]}
  assert evaluate(res, seqs, 'lasot')['overall']['auc'] == pytest.approx(
      20 / 21
  )
  assert evaluate(res, seqs, 'pytracking')['overall']['auc'] == pytest.approx(
      20 / 21 / 2
  )


def test_missing_results_and_fps():
  seqs, res = _three_sequences()
  with pytest.raises(KeyError, match='bad'):
    evaluate({'good': res['good'], 'half': res['half']}, seqs, 'otb')
  rep = evaluate(
      res, seqs, 'otb', times={'good': [0.1] * 4, 'half': [0.05] * 4}
  )
  assert rep['overall']['fps'] == pytest.approx(15.0)
  assert rep['per_sequence']['bad']['fps'] is None


def test_unknown_protocol():
  with pytest.raises(ValueError, match='unknown protocol'):
    P.get_protocol('nope')
