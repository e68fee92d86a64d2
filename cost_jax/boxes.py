"""Box conversions, IoU and generalised IoU in jnp (TransT `util/box_ops.py`).

Boxes are (..., 4) arrays, either (cx, cy, w, h) or (x0, y0, x1, y1); every
function broadcasts over the leading axes and pairs boxes elementwise (the
diagonal of TransT's pairwise matrices), which is what the losses need.
"""

import jax.numpy as jnp

# Divisions are guarded only against exact zeros (degenerate boxes), so the
# values equal TransT's epsilon-free formulas for every box of positive area.
_TINY = 1e-12


def cxcywh_to_xyxy(boxes):
  """(cx, cy, w, h) -> (x0, y0, x1, y1)."""
  cx, cy, w, h = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack(
      [cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1
  )


def xyxy_to_cxcywh(boxes):
  """(x0, y0, x1, y1) -> (cx, cy, w, h)."""
  x0, y0, x1, y1 = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=-1)


def area(boxes_xyxy):
  return (boxes_xyxy[..., 2] - boxes_xyxy[..., 0]) * (
      boxes_xyxy[..., 3] - boxes_xyxy[..., 1]
  )


def iou_and_union(a_xyxy, b_xyxy):
  """Elementwise IoU and union area of two xyxy box arrays."""
  top_left = jnp.maximum(a_xyxy[..., :2], b_xyxy[..., :2])
  bottom_right = jnp.minimum(a_xyxy[..., 2:], b_xyxy[..., 2:])
  wh = jnp.clip(bottom_right - top_left, 0.0)
  inter = wh[..., 0] * wh[..., 1]
  union = area(a_xyxy) + area(b_xyxy) - inter
  return inter / jnp.maximum(union, _TINY), union


def generalized_iou(a_xyxy, b_xyxy):
  """Elementwise GIoU = IoU - (C - union) / C, C the enclosing box's area."""
  iou, union = iou_and_union(a_xyxy, b_xyxy)
  top_left = jnp.minimum(a_xyxy[..., :2], b_xyxy[..., :2])
  bottom_right = jnp.maximum(a_xyxy[..., 2:], b_xyxy[..., 2:])
  wh = jnp.clip(bottom_right - top_left, 0.0)
  enclosing = wh[..., 0] * wh[..., 1]
  return iou - (enclosing - union) / jnp.maximum(enclosing, _TINY)
