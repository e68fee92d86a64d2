"""COST / TransT training losses in PyTorch, written from the paper (§4.4-4.5,
Eqs. 6-8), docs/design.md and TransT's SetCriterion (single device).

labels   COST: a cell is positive when its centre lies in the box; the cell
         holding the box centre always is. TransT: its TrackingMatcher
         (cells whose top-left corner lies in the box, numpy slicing).
ce       weighted mean sum(w l) / sum(w), w = 1 positive, neg_weight else:
         BCE on sigmoid logits (COST), F.cross_entropy(weight=[1, eos]) (TransT).
l1/giou  sums over positives / number of positives (>= 1).
coa      mean over i of (L_v2l + L_l2v) / 2 with the j != i denominators.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F


def cell_centres(config):
  """Crop-normalised centres of the grid columns (= rows) the head scores."""
  m = config.model
  feat = m.search_size // 8
  if not m.language:
    return (np.arange(feat) + 0.5) / feat
  pad = m.convs.num * (m.convs.kernel - 1) / 2
  side = feat - 2 * int(pad)
  if m.head.grid == 'visual400':  # Receptive-field centres of the 20x20.
    return (np.arange(side) + pad + 0.5) / feat
  grid = math.isqrt(side * side + config.text.max_len + 1)
  return (np.arange(grid) + 0.5) / grid


def cost_labels(boxes, centres):
  """(B, 4) cx, cy, w, h -> (B, G*G) COST positives (row-major cells)."""
  c = torch.as_tensor(centres, dtype=torch.float32)
  g = len(centres)
  out = []
  for cx, cy, w, h in boxes.tolist():
    in_x = (c >= cx - w / 2) & (c <= cx + w / 2)
    in_y = (c >= cy - h / 2) & (c <= cy + h / 2)
    grid = in_y[:, None] & in_x[None, :]
    step = float(c[1] - c[0])
    col = min(max(math.floor((cx - float(c[0])) / step + 0.5), 0), g - 1)
    row = min(max(math.floor((cy - float(c[0])) / step + 0.5), 0), g - 1)
    grid[row, col] = True
    out.append(grid.flatten())
  return torch.stack(out).float()


def transt_labels(boxes, side):
  """TransT's TrackingMatcher on a side x side grid (numpy slicing)."""
  out = []
  for cx, cy, w, h in boxes.tolist():
    x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    xmin, xmax = math.ceil(x0 * side), math.ceil(x1 * side)
    ymin, ymax = math.ceil(y0 * side), math.ceil(y1 * side)
    xmax += xmin == xmax
    ymax += ymin == ymax
    grid = np.zeros((side, side), np.float32)
    grid[ymin:ymax, xmin:xmax] = 1
    out.append(torch.from_numpy(grid.flatten()))
  return torch.stack(out)


def generalized_box_iou(a, b):
  """DETR's GIoU of matching rows of two (N, 4) x0, y0, x1, y1 tensors."""
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
  inter = (rb - lt).clamp(min=0).prod(-1)
  union = area_a + area_b - inter
  iou = inter / union
  hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(
      -1
  )
  return iou - (hull - union) / hull


def xyxy(boxes):
  cx, cy, w, h = boxes.unbind(-1)
  return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def coa_loss(vis, text, temperature):
  """Eqs. 6-8: both directions, denominators over j != i, mean over i."""
  eye = torch.eye(vis.shape[0], dtype=torch.bool, device=vis.device)

  def direction(q, k):
    logits = q @ k.T / temperature
    lse = torch.logsumexp(logits.masked_fill(eye, -math.inf), dim=1)
    return lse - logits.diagonal()

  return (0.5 * (direction(vis, text) + direction(text, vis))).mean()


def compute_losses(outputs, search_box, visible, config):
  """All terms (torch scalars) for one batch; see the module docstring."""
  lc = config.loss
  visible = visible.bool()
  if config.model.language:
    labels = cost_labels(search_box, cell_centres(config))
  else:
    labels = transt_labels(search_box, config.model.search_size // 8)
  logits = outputs['logits']
  labels = labels.to(logits.device) * visible[:, None].float()
  if logits.ndim == 3:
    ce = F.cross_entropy(
        logits.permute(0, 2, 1),
        (1 - labels).long(),
        weight=torch.tensor([1.0, lc.neg_weight], device=logits.device),
    )
  else:
    weights = labels + lc.neg_weight * (1 - labels)
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction='none')
    ce = (weights * bce).sum() / weights.sum()
  pos = labels > 0
  pred = outputs['boxes'][pos]
  target = search_box[:, None, :].expand_as(outputs['boxes'])[pos]
  num = max(float(pos.sum()), 1.0)
  terms = {
      'ce': ce,
      'l1': (pred - target).abs().sum() / num,
      'giou': (1 - generalized_box_iou(xyxy(pred), xyxy(target))).sum() / num,
  }
  terms['reg'] = lc.l1_weight * terms['l1'] + lc.giou_weight * terms['giou']
  terms['coa'] = (
      coa_loss(outputs['coa_vis'], outputs['coa_text'], lc.coa_temperature)
      if 'coa_vis' in outputs
      else logits.new_zeros(())
  )
  terms['loss'] = (
      lc.coa_weight * terms['coa'] + terms['reg'] + lc.ce_weight * terms['ce']
  )
  return terms
