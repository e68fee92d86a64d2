"""Losses and boxes against hand-computed values (docs/design.md)."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cost_jax import boxes as box_ops
from cost_jax import losses

COST_441 = types.SimpleNamespace(language=True, grid='tokens441', grid_side=11)
COST_400 = types.SimpleNamespace(
    language=True,
    grid='visual400',
    grid_side=20,
    num_convs=3,
    conv_kernel=5,
    search_feat=32,
)
TRANST = types.SimpleNamespace(language=False, grid='tokens441', grid_side=32)


def labels_of(spec, box, visible=True):
  out = losses.grid_labels(
      jnp.asarray([box], jnp.float32), jnp.asarray([visible]), spec
  )
  return np.asarray(out[0])


# --- labels ------------------------------------------------------------------
def test_tiny_box_gets_its_centre_cell():
  # Box [0.29, 0.31] x [0.59, 0.61] holds no cell centre (c + 0.5) / 11;
  # its centre lies in cell (row 6, col 3).
  labels = labels_of(COST_441, (0.3, 0.6, 0.02, 0.02))
  assert labels.sum() == 1 and labels[6 * 11 + 3] == 1


def test_box_covers_the_cells_whose_centres_it_holds():
  # x, y in [0.35, 0.65] hold the centres of cells 4, 5, 6 (0.41, 0.5, 0.59).
  labels = labels_of(COST_441, (0.5, 0.5, 0.3, 0.3)).reshape(11, 11)
  expected = np.zeros((11, 11))
  expected[4:7, 4:7] = 1
  np.testing.assert_array_equal(labels, expected)


def test_absent_target_has_no_positive():
  assert labels_of(COST_441, (0.5, 0.5, 0.3, 0.3), visible=False).sum() == 0


def test_visual400_centres_are_symmetric_receptive_field_centres():
  centres = losses.grid_axis_centres(COST_400)
  np.testing.assert_allclose(centres, (np.arange(20) + 6.5) / 32)
  np.testing.assert_allclose(centres[::-1], 1 - centres)
  labels = labels_of(COST_400, (0.5, 0.5, 0.01, 0.01))
  assert labels.sum() == 1 and labels[10 * 20 + 10] == 1  # Nearest: 16.5/32.


@pytest.mark.parametrize(
    'box,cells',
    [
        (
            (0.5, 0.5, 0.1, 0.1),
            [(r, c) for r in (15, 16, 17) for c in (15, 16, 17)],
        ),  # ceil(14.4)..ceil(17.6)
        ((0.5, 0.5, 0.01, 0.01), [(16, 16)]),  # ceil(15.84)=16, ceil(16.16)=17
        ((0.51, 0.51, 0.005, 0.005), [(17, 17)]),  # ceil(16.24) == ceil(16.4)
    ],
)
def test_transt_top_left_corner_rule(box, cells):
  labels = labels_of(TRANST, box)
  assert sorted(np.flatnonzero(labels)) == sorted(r * 32 + c for r, c in cells)


# --- boxes -------------------------------------------------------------------
def test_giou_of_known_boxes():
  a = jnp.asarray(
      [[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 3.0, 4.0]]
  )
  b = jnp.asarray(
      [[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0], [1.0, 1.0, 3.0, 4.0]]
  )
  # Overlap 1, union 7, hull 9 | disjoint: union 2, hull 3 | identical.
  np.testing.assert_allclose(
      box_ops.generalized_iou(a, b), [1 / 7 - 2 / 9, -1 / 3, 1.0], rtol=1e-6
  )
  iou, union = box_ops.iou_and_union(a, b)
  np.testing.assert_allclose(iou, [1 / 7, 0, 1], rtol=1e-6)
  np.testing.assert_allclose(union, [7, 2, 6], rtol=1e-6)


def test_box_format_round_trip():
  cxcywh = jnp.asarray([[0.5, 0.4, 0.2, 0.1]])
  np.testing.assert_allclose(
      box_ops.cxcywh_to_xyxy(cxcywh), [[0.4, 0.35, 0.6, 0.45]], rtol=1e-6
  )
  np.testing.assert_allclose(
      box_ops.xyxy_to_cxcywh(box_ops.cxcywh_to_xyxy(cxcywh)), cxcywh, rtol=1e-6
  )


# --- classification and regression -------------------------------------------
BCE_POS = math.log(1 + math.exp(-2))  # logit 2, target 1
BCE_NEG = math.log(1 + math.exp(-1))  # logit -1, target 0


def test_weighted_bce_and_transt_ce():
  labels = jnp.asarray([[1.0, 0.0]])
  expected = (BCE_POS + 0.0625 * BCE_NEG) / 1.0625
  num, den = losses.classification_terms(
      jnp.asarray([[2.0, -1.0]]), labels, 0.0625
  )
  assert float(num / den) == pytest.approx(expected, rel=1e-6)
  # TransT 2-class: softmax([2, 0])[0] and softmax([0, 1])[1] give the
  # same probabilities as sigmoid(2) and 1 - sigmoid(-1).
  two_class = jnp.asarray([[[2.0, 0.0], [0.0, 1.0]]])
  num, den = losses.classification_terms(two_class, labels, 0.0625)
  assert float(num / den) == pytest.approx(expected, rel=1e-6)


def test_regression_over_positives():
  pred = jnp.asarray([[[0.5, 0.5, 0.2, 0.2], [0.9, 0.9, 0.1, 0.1]]])
  target = jnp.asarray([[0.55, 0.5, 0.2, 0.2]])
  sums, num_pos = losses.regression_terms(
      pred, target, jnp.asarray([[1.0, 0.0]])
  )
  assert float(num_pos) == 1
  assert float(sums['l1']) == pytest.approx(0.05, abs=1e-6)
  # Boxes [0.4,0.6]x[0.4,0.6] and [0.45,0.65]x[0.4,0.6]: inter 0.03,
  # union 0.05, hull 0.25 x 0.2 = 0.05 -> GIoU = IoU = 0.6.
  assert float(sums['giou']) == pytest.approx(0.4, abs=1e-6)
  assert float(sums['iou']) == pytest.approx(0.6, abs=1e-6)


def loss_config(**kw):
  defaults = dict(
      coa_weight=1.0,
      coa_temperature=0.5,
      coa_exclude_positive=True,
      coa_mask_same_text=False,
      ce_weight=1.0,
      l1_weight=5.0,
      giou_weight=2.0,
      neg_weight=0.0625,
  )
  return types.SimpleNamespace(**dict(defaults, **kw))


def test_absent_target_is_all_negative_without_regression():
  logits = jnp.asarray([[0.3] * 121])
  batch = {
      'search_box': jnp.full((1, 4), jnp.nan),  # Garbage is ignored.
      'visible': jnp.asarray([False]),
      'text_ids': jnp.ones((1, 5)),
  }
  outputs = {'logits': logits, 'boxes': jnp.full((1, 121, 4), 0.5)}
  terms = losses.compute_losses(outputs, batch, COST_441, loss_config())
  assert float(terms['l1']) == 0 and float(terms['giou']) == 0
  assert float(terms['num_pos']) == 0
  assert float(terms['ce']) == pytest.approx(
      math.log(1 + math.exp(0.3)), rel=1e-6
  )
  assert float(terms['loss']) == pytest.approx(float(terms['ce']), rel=1e-6)


# --- CoA (InfoNCE, Eqs. 6-8) -------------------------------------------------
VIS = np.eye(3, dtype=np.float32)
TEXT = np.asarray([[1, 0, 0], [0.6, 0.8, 0], [0, 0, 1]], np.float32)


def hand_infonce(exclude_positive, masked=()):
  """Eqs. 6-8 written out term by term, tau = 0.5."""
  sim = [
      [sum(VIS[i][k] * TEXT[j][k] for k in range(3)) / 0.5 for j in range(3)]
      for i in range(3)
  ]
  total = 0.0
  for i in range(3):
    for direction in (lambda a, b: sim[a][b], lambda a, b: sim[b][a]):
      keep = [
          j
          for j in range(3)
          if (j != i or not exclude_positive) and (i, j) not in masked
      ]
      denominator = sum(math.exp(direction(i, j)) for j in keep)
      total += 0.5 * (-direction(i, i) + math.log(denominator))
  return total / 3


@pytest.mark.parametrize('exclude_positive', [True, False])
def test_infonce_3x3(exclude_positive):
  num, den = losses.coa_terms(
      jnp.asarray(VIS),
      jnp.asarray(TEXT),
      jnp.arange(3)[:, None],
      0.5,
      exclude_positive,
  )
  assert float(num / den) == pytest.approx(
      hand_infonce(exclude_positive), rel=1e-6
  )


def test_infonce_masks_negatives_with_the_same_text():
  ids = jnp.asarray([[7, 1], [7, 1], [3, 0]])  # Pairs 0 and 1 share a text.
  num, den = losses.coa_terms(
      jnp.asarray(VIS), jnp.asarray(TEXT), ids, 0.5, True, mask_same_text=True
  )
  expected = hand_infonce(True, masked={(0, 1), (1, 0)})
  assert float(num / den) == pytest.approx(expected, rel=1e-6)


def test_infonce_global_negatives_over_devices_equal_one_device():
  rng = np.random.default_rng(0)
  vis, text = (rng.normal(size=(8, 16)).astype(np.float32) for _ in range(2))
  vis /= np.linalg.norm(vis, axis=1, keepdims=True)
  text /= np.linalg.norm(text, axis=1, keepdims=True)
  ids = np.arange(8)[:, None]

  def coa(v, t, i, axis_name=None):
    num, den = losses.coa_terms(v, t, i, 0.5, axis_name=axis_name)
    return num / losses.shared_denominator(den, axis_name, 1.0)

  single = coa(vis, text, ids)
  split = lambda x: x.reshape(4, 2, *x.shape[1:])
  per_device = jax.pmap(lambda v, t, i: coa(v, t, i, 'data'), axis_name='data')(
      split(vis), split(text), split(ids)
  )
  # Each replica holds its share as a local mean; their mean is the value.
  assert float(jnp.mean(per_device)) == pytest.approx(float(single), rel=1e-6)


# --- diagnostics ---------------------------------------------------------------
def test_constant_predictor_ce_by_hand():
  # P = 2 positives, N = 6 negatives of weight 0.5: total weight 5,
  # p* = 2 / 5 = 0.4, ce* = -(2 ln 0.4 + 3 ln 0.6) / 5.
  labels = jnp.asarray([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
  expected = -(2 * math.log(0.4) + 3 * math.log(0.6)) / 5
  assert float(losses.constant_ce(labels, 0.5)) == pytest.approx(
      expected, rel=1e-6
  )
  # It is the minimum of the weighted CE over constant logits.
  best = math.log(0.4 / 0.6)
  for logit in (best, best - 0.3, best + 0.3):
    num, den = losses.classification_terms(jnp.full((2, 4), logit), labels, 0.5)
    assert float(num / den) >= expected - 1e-6
  num, den = losses.classification_terms(jnp.full((2, 4), best), labels, 0.5)
  assert float(num / den) == pytest.approx(expected, rel=1e-6)


def test_top1_hit_and_iou_by_hand():
  # Sample 0 picks candidate 1 (a positive) whose box is the target shifted
  # by half its width: IoU = 0.5 * 0.2 * 0.2 / (1.5 * 0.04) = 1 / 3.
  # Sample 1 picks candidate 0 (a negative) whose box equals its target.
  # Sample 2 is absent and does not count.
  logits = jnp.asarray([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 9.0]])
  target = jnp.asarray(
      [[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2]]
  )
  boxes = jnp.tile(target[:, None, :], (1, 3, 1))
  boxes = boxes.at[0, 1].set(jnp.asarray([0.6, 0.5, 0.2, 0.2]))
  labels = jnp.asarray([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
  visible = jnp.asarray([True, True, False])
  sums = losses.top1_terms(logits, boxes, target, labels, visible)
  assert float(sums['top1_hit']) == pytest.approx(1.0)
  assert float(sums['top1_iou']) == pytest.approx(1 / 3 + 1.0, rel=1e-6)
  # TransT's 2-class logits pick by the target-class margin.
  two = jnp.stack([logits, jnp.zeros_like(logits)], axis=-1)
  assert float(
      losses.top1_terms(two, boxes, target, labels, visible)['top1_hit']
  ) == pytest.approx(1.0)


def test_compute_losses_reports_diagnostics():
  logits = jnp.asarray([[0.3] * 121])
  box = jnp.asarray([[0.5, 0.5, 0.1, 0.1]])
  batch = {
      'search_box': box,
      'visible': jnp.asarray([True]),
      'text_ids': jnp.ones((1, 5)),
  }
  outputs = {'logits': logits, 'boxes': jnp.tile(box[:, None], (1, 121, 1))}
  terms = losses.compute_losses(outputs, batch, COST_441, loss_config())
  assert float(terms['top1_iou']) == pytest.approx(1.0, rel=1e-6)
  labels = losses.grid_labels(box, jnp.asarray([True]), COST_441)
  assert float(terms['ce_const']) == pytest.approx(
      float(losses.constant_ce(labels, 0.0625)), rel=1e-6
  )
  assert float(terms['ce']) >= float(terms['ce_const'])
