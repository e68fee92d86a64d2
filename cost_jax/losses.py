"""COST and TransT training losses (paper §4.4-4.5; docs/design.md, "Labels"
and "Losses").

Every term is normalised over the GLOBAL batch. Under a named axis (pmap or
shard_map), each replica returns its share of the global value written as a
local mean: numerator / (global denominator / number of replicas), so that
`lax.pmean` of the per-replica terms, and of their gradients, equals the value
and gradient one device computes on the whole batch. The CoA negatives come
from the whole global batch through `lax.all_gather`.
"""

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

from cost_jax import boxes as box_ops

# Stand-in box for absent targets (never regressed, keeps the maths finite).
_NEUTRAL_BOX = (0.5, 0.5, 0.25, 0.25)


# --- candidate grids and labels ---------------------------------------------
def grid_axis_centres(spec) -> np.ndarray:
  """Crop-normalised centre of each candidate column (= row) of the grid.

  tokens441: cell c of a G x G grid laid over the crop, centre (c + 0.5) / G.
  visual400: visual token c sits at the centre of its footprint on the search
  feature map, (c + pad + 0.5) / S with pad = convs * (kernel - 1) / 2 (the
  VALID convs' border), which keeps the grid symmetric about the crop centre.
  no_lb (TransT): the 32x32 feature cells, centre (c + 0.5) / 32 (TransT's
  labels use the top-left corners instead, see `transt_labels`).
  """
  side = spec.grid_side
  if spec.language and spec.grid == 'visual400':
    pad = spec.num_convs * (spec.conv_kernel - 1) / 2
    return (np.arange(side) + pad + 0.5) / spec.search_feat
  return (np.arange(side) + 0.5) / side


def centre_labels(boxes, centres):
  """COST rule: cells whose centre lies in the box, plus the box-centre cell.

  boxes: (B, 4) crop-normalised (cx, cy, w, h); centres: (G,) numpy.
  Returns (B, G*G) float32, cell k = (row k // G, col k % G).
  """
  side = len(centres)
  x0, y0, x1, y1 = jnp.moveaxis(box_ops.cxcywh_to_xyxy(boxes), -1, 0)
  c = jnp.asarray(centres, jnp.float32)
  in_x = (c >= x0[:, None]) & (c <= x1[:, None])
  in_y = (c >= y0[:, None]) & (c <= y1[:, None])
  inside = in_y[:, :, None] & in_x[:, None, :]
  step = float(centres[1] - centres[0]) if side > 1 else 1.0

  def nearest(v):  # Index of the cell containing v (clipped to the grid).
    idx = jnp.floor((v - float(centres[0])) / step + 0.5).astype(jnp.int32)
    return jax.nn.one_hot(jnp.clip(idx, 0, side - 1), side, dtype=bool)

  centre = nearest(boxes[:, 1])[:, :, None] & nearest(boxes[:, 0])[:, None, :]
  return (inside | centre).reshape(boxes.shape[0], -1).astype(jnp.float32)


def transt_labels(boxes, side):
  """TransT's TrackingMatcher: cells whose top-left corner lies in the box.

  X range [ceil(x0*L), ceil(x1*L)), widened by one when empty (same for y).
  TransT's numpy slicing wraps a negative start (an unguarded edge case that
  yields no positives); here a negative start is clamped to 0.
  """
  x0, y0, x1, y1 = jnp.moveaxis(box_ops.cxcywh_to_xyxy(boxes), -1, 0)
  cells = jnp.arange(side, dtype=jnp.float32)

  def span(lo, hi):
    lo, hi = jnp.ceil(lo * side), jnp.ceil(hi * side)
    hi = jnp.where(hi == lo, hi + 1, hi)
    return (cells >= lo[:, None]) & (cells < hi[:, None])

  inside = span(y0, y1)[:, :, None] & span(x0, x1)[:, None, :]
  return inside.reshape(boxes.shape[0], -1).astype(jnp.float32)


def grid_labels(boxes, visible, spec):
  """(B, N) positives of the candidate grid; absent targets are all negative."""
  if spec.language:
    labels = centre_labels(boxes, grid_axis_centres(spec))
  else:
    labels = transt_labels(boxes, spec.grid_side)
  return labels * visible.astype(jnp.float32)[:, None]


# --- loss terms: each returns (numerator, denominator) over the local batch --
def classification_terms(logits, labels, neg_weight):
  """Weighted CE, sum_i w_i l_i and sum_i w_i (w = 1 positive, neg_weight else).

  logits (B, N): COST's binary cross-entropy on sigmoid scores.
  logits (B, N, 2): TransT's 2-class softmax CE, class 0 = target, i.e.
  cross_entropy(weight=[1, eos_coef]) with its weighted-mean reduction.
  """
  if logits.ndim == 3:
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -(labels * log_p[..., 0] + (1.0 - labels) * log_p[..., 1])
  else:
    nll = optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), labels)
  weights = labels + neg_weight * (1.0 - labels)
  return jnp.sum(weights * nll), jnp.sum(weights)


def regression_terms(pred_boxes, target_boxes, labels):
  """Sums over positives of L1, 1 - GIoU and IoU, and the positive count.

  pred_boxes (B, N, 4) and target_boxes (B, 4) are crop-normalised cxcywh;
  every positive regresses its sample's ground-truth box.
  """
  target = target_boxes[:, None, :]
  l1 = jnp.sum(jnp.abs(pred_boxes - target), axis=-1)
  pred_xyxy = box_ops.cxcywh_to_xyxy(pred_boxes)
  target_xyxy = box_ops.cxcywh_to_xyxy(target)
  giou = box_ops.generalized_iou(pred_xyxy, target_xyxy)
  iou, _ = box_ops.iou_and_union(pred_xyxy, target_xyxy)
  return {
      'l1': jnp.sum(labels * l1),
      'giou': jnp.sum(labels * (1.0 - giou)),
      'iou': jnp.sum(labels * iou),
  }, jnp.sum(labels)


def gather_global(x, axis_name):
  """The global batch of `x` (all replicas, in axis order) and this replica's
  row offset in it; the identity without an axis."""
  if axis_name is None:
    return x, 0
  return (
      lax.all_gather(x, axis_name, tiled=True),
      lax.axis_index(axis_name) * x.shape[0],
  )


def coa_terms(
    vis,
    text,
    text_ids,
    temperature,
    exclude_positive=True,
    mask_same_text=False,
    axis_name=None,
):
  """InfoNCE of Eqs. 6-8 for this replica's anchors against the global batch.

  vis, text: (b, D) L2-normalised embeddings; text_ids: (b, T). Returns
  (sum over local anchors of (l_v2l + l_l2v) / 2, number of anchors that have
  at least one term in their denominator). exclude_positive: denominator over
  j != i as the paper writes it; False gives the standard InfoNCE.
  mask_same_text: drops negatives j whose token ids equal the anchor's.
  """
  all_vis, offset = gather_global(vis, axis_name)
  all_text, _ = gather_global(text, axis_name)
  anchors = offset + jnp.arange(vis.shape[0])
  positive = jnp.arange(all_vis.shape[0])[None, :] == anchors[:, None]
  valid = ~positive if exclude_positive else jnp.ones_like(positive)
  if mask_same_text:
    all_ids, _ = gather_global(text_ids, axis_name)
    same = jnp.all(text_ids[:, None, :] == all_ids[None, :, :], axis=-1)
    valid = valid & ~(same & ~positive)
  has_terms = jnp.any(valid, axis=1)
  valid = valid | ~has_terms[:, None]  # Keeps empty rows finite; zeroed below.

  def direction(queries, keys):
    logits = (queries @ keys.T).astype(jnp.float32) / temperature
    lse = jax.nn.logsumexp(jnp.where(valid, logits, -jnp.inf), axis=1)
    return lse - jnp.sum(jnp.where(positive, logits, 0.0), axis=1)

  per_anchor = 0.5 * (direction(vis, all_text) + direction(text, all_vis))
  has_terms = has_terms.astype(jnp.float32)
  return jnp.sum(per_anchor * has_terms), jnp.sum(has_terms)


# --- diagnostics (no gradient) ----------------------------------------------
def target_scores(logits):
  """A per-candidate score that is monotone in the target probability."""
  if logits.ndim == 3:  # TransT: softmax over (target, background).
    return logits[..., 0] - logits[..., 1]
  return logits


def top1_terms(logits, pred_boxes, target_boxes, labels, visible):
  """Sums over visible samples of the top-1 hit and the top-1 IoU.

  Top-1 is the candidate the tracker would pick before its window: hit = it
  is a positive cell; IoU = overlap of its box with the ground truth.
  """
  top = jnp.argmax(target_scores(logits), axis=1)
  hit = jnp.take_along_axis(labels, top[:, None], axis=1)[:, 0]
  box = jnp.take_along_axis(pred_boxes, top[:, None, None], axis=1)[:, 0]
  iou, _ = box_ops.iou_and_union(
      box_ops.cxcywh_to_xyxy(box), box_ops.cxcywh_to_xyxy(target_boxes)
  )
  vis = visible.astype(jnp.float32)
  return {'top1_hit': jnp.sum(hit * vis), 'top1_iou': jnp.sum(iou * vis)}


def constant_ce(labels, neg_weight, axis_name=None):
  """Weighted CE of the best constant predictor for these labels.

  With P positives (weight 1) and N negatives (weight w), a constant
  probability p minimises -(P log p + w N log(1 - p)) / (P + w N) at
  p* = P / (P + w N). The classifier has learnt something about the image
  only once its `ce` is below this value. Global over the named axis.
  """
  pos = jnp.sum(labels)
  neg = jnp.sum(1.0 - labels)
  if axis_name is not None:
    pos, neg = lax.psum(pos, axis_name), lax.psum(neg, axis_name)
  total = pos + neg_weight * neg
  p = pos / jnp.maximum(total, 1e-12)
  xlogy = lambda a, b: jnp.where(a > 0, a * jnp.log(jnp.maximum(b, 1e-12)), 0.0)
  return -(xlogy(pos, p) + xlogy(neg_weight * neg, 1.0 - p)) / jnp.maximum(
      total, 1e-12
  )


# --- total -------------------------------------------------------------------
def shared_denominator(local_den, axis_name, minimum):
  """max(global denominator, minimum) / number of replicas (see module doc)."""
  local_den = lax.stop_gradient(local_den)
  if axis_name is None:
    return jnp.maximum(local_den, minimum)
  total = lax.psum(local_den, axis_name)
  return jnp.maximum(total, minimum) / lax.psum(1, axis_name)


def compute_losses(outputs, batch, spec, loss_config, axis_name=None):
  """All loss terms of one (per-replica) batch, f32 scalars.

  outputs: the model's training forward ('logits', 'boxes', and 'coa_vis' /
  'coa_text' when spec.coa). batch: 'search_box' (B, 4) crop-normalised
  cxcywh, 'visible' (B,), 'text_ids' (B, T). Returns 'loss' =
  coa_weight * coa + reg + ce_weight * ce with reg = l1_weight * l1 +
  giou_weight * giou, each term, 'iou' (mean IoU of the positives' boxes),
  'num_pos' (positives per pair) and the diagnostics 'ce_const' (`ce` of the
  best constant predictor), 'top1_hit' and 'top1_iou' (over visible pairs).
  """
  lc = loss_config
  visible = batch['visible'].astype(bool)
  target = jnp.where(
      visible[:, None],
      batch['search_box'].astype(jnp.float32),
      jnp.asarray(_NEUTRAL_BOX, jnp.float32),
  )
  labels = lax.stop_gradient(grid_labels(target, visible, spec))
  ce_num, ce_den = classification_terms(
      outputs['logits'], labels, lc.neg_weight
  )
  reg_nums, num_pos = regression_terms(
      outputs['boxes'].astype(jnp.float32), target, labels
  )
  pos_den = shared_denominator(num_pos, axis_name, 1.0)
  terms = {k: v / pos_den for k, v in reg_nums.items()}
  terms['ce'] = ce_num / shared_denominator(ce_den, axis_name, 1e-12)
  terms['reg'] = lc.l1_weight * terms['l1'] + lc.giou_weight * terms['giou']
  terms['coa'] = jnp.zeros((), jnp.float32)
  if 'coa_vis' in outputs:
    coa_num, coa_den = coa_terms(
        outputs['coa_vis'],
        outputs['coa_text'],
        batch['text_ids'],
        lc.coa_temperature,
        lc.coa_exclude_positive,
        lc.coa_mask_same_text,
        axis_name,
    )
    terms['coa'] = coa_num / shared_denominator(coa_den, axis_name, 1.0)
  terms['loss'] = (
      lc.coa_weight * terms['coa'] + terms['reg'] + lc.ce_weight * terms['ce']
  )
  terms['num_pos'] = num_pos / visible.shape[0]
  top1, num_vis = top1_terms(
      lax.stop_gradient(outputs['logits']),
      lax.stop_gradient(outputs['boxes'].astype(jnp.float32)),
      target,
      labels,
      visible,
  ), jnp.sum(visible.astype(jnp.float32))
  vis_den = shared_denominator(num_vis, axis_name, 1.0)
  terms.update({k: v / vis_den for k, v in top1.items()})
  terms['ce_const'] = constant_ce(labels, lc.neg_weight, axis_name)
  return terms
