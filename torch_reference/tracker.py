"""TransT's online tracker in PyTorch + numpy + cv2 (docs/design.md, "Tracking").

The reference the JAX tracker is compared with frame by frame:
`get_subwindow` crops with first-frame mean-colour padding (truncated to
uint8) and a cv2 INTER_LINEAR resize; the Hanning window
np.outer(np.hanning(G), np.hanning(G)) weighs the scores with window
influence 0.49; the best candidate's box (normalised to the search crop) is
decoded with `* s_x` and `centre - s_x / 2`; cx, cy are clipped to the image
and w, h to [min_size, W or H]. Scores are sigmoid(logit) for COST and the
softmax's target column for TransT. With COST grids the candidate box is the
token's own predicted box, exactly as with TransT's 32x32 grid.
"""

import math

import cv2
import numpy as np
import torch


def crop_side(size, factor):
  """TransT's context crop: ceil(sqrt((w + c)(h + c))), c = (f-1)(w+h)/2."""
  context = (factor - 1) * (size[0] + size[1]) * 0.5
  return math.ceil(math.sqrt((size[0] + context) * (size[1] + context)))


def get_subwindow(im, pos, model_sz, original_sz, avg_chans):
  """SiamFC/TransT crop: (model_sz, model_sz, 3) uint8 around `pos`."""
  sz = original_sz
  c = (original_sz + 1) / 2
  xmin = np.floor(pos[0] - c + 0.5)
  ymin = np.floor(pos[1] - c + 0.5)
  xmax, ymax = xmin + sz - 1, ymin + sz - 1
  r, cols, k = im.shape
  left, top = int(max(0.0, -xmin)), int(max(0.0, -ymin))
  right = int(max(0.0, xmax - cols + 1))
  bottom = int(max(0.0, ymax - r + 1))
  xmin, xmax, ymin, ymax = xmin + left, xmax + left, ymin + top, ymax + top
  if any((top, bottom, left, right)):
    padded = np.zeros((r + top + bottom, cols + left + right, k), np.uint8)
    padded[top : top + r, left : left + cols, :] = im
    if top:
      padded[0:top, left : left + cols, :] = avg_chans
    if bottom:
      padded[r + top :, left : left + cols, :] = avg_chans
    if left:
      padded[:, 0:left, :] = avg_chans
    if right:
      padded[:, cols + left :, :] = avg_chans
    im = padded
  patch = im[int(ymin) : int(ymax + 1), int(xmin) : int(xmax + 1), :]
  if model_sz != original_sz:
    patch = cv2.resize(patch, (model_sz, model_sz))
  return patch


def _to_tensor(patch, device):
  return torch.from_numpy(patch.transpose(2, 0, 1)[None].astype(np.float32)).to(
      device
  )


class ReferenceTracker:
  """One sequence at a time: `initialize(frame, box, ids, mask)`, then
  `track(frame)` -> [x, y, w, h] per frame (frames RGB uint8 HWC)."""

  def __init__(self, model, config, device='cpu'):
    self.model = model.eval().to(device)
    self.device = device
    m, d, k = config.model, config.data, config.track
    self.template_size, self.search_size = m.template_size, m.search_size
    self.template_factor, self.search_factor = (
        d.template_factor,
        d.search_factor,
    )
    self.window_influence, self.min_size = k.window_influence, k.min_size
    self.language = m.language
    self.window = None

  @torch.no_grad()
  def initialize(self, image, box, ids=None, mask=None):
    box = [float(v) for v in box]
    self.center = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
    self.size = np.array([box[2], box[3]])
    s_z = crop_side(self.size, self.template_factor)
    self.channel_average = np.mean(image, axis=(0, 1))
    z = get_subwindow(
        image, self.center, self.template_size, s_z, self.channel_average
    )
    self.template = self.model.encode_template(_to_tensor(z, self.device))
    self.text = {}
    if self.language:
      to = lambda a: torch.as_tensor(
          np.asarray(a)[None], dtype=torch.long, device=self.device
      )
      self.text = self.model.encode_text(to(ids), to(mask))

  def _scores(self, logits):
    if logits.ndim == 3:  # TransT: 2-class softmax, column 0 = target.
      return torch.softmax(logits, dim=-1)[0, :, 0].cpu().numpy()
    return torch.sigmoid(logits)[0].cpu().numpy()

  def _window(self, num):
    if self.window is None or self.window.size != num:
      side = math.isqrt(num)
      if side * side != num:
        raise ValueError(f'{num} candidates do not form a square grid.')
      self.window = np.outer(np.hanning(side), np.hanning(side)).flatten()
    return self.window

  @torch.no_grad()
  def track(self, image):
    s_x = crop_side(self.size, self.search_factor)
    x = get_subwindow(
        image, self.center, self.search_size, round(s_x), self.channel_average
    )
    out = self.model.track(_to_tensor(x, self.device), self.template, self.text)
    score = self._scores(out['logits'])
    boxes = out['boxes'][0].cpu().numpy().T  # (4, N)
    wi = self.window_influence
    pscore = score * (1 - wi) + self._window(score.size) * wi
    best = int(np.argmax(pscore))
    bbox = boxes[:, best] * s_x
    cx = bbox[0] + self.center[0] - s_x / 2
    cy = bbox[1] + self.center[1] - s_x / 2
    height, width = image.shape[:2]
    cx, cy = max(0, min(cx, width)), max(0, min(cy, height))
    w = max(self.min_size, min(bbox[2], width))
    h = max(self.min_size, min(bbox[3], height))
    self.center, self.size = np.array([cx, cy]), np.array([w, h])
    return [cx - w / 2, cy - h / 2, w, h]


def track_sequence(tracker, frames, init_box, ids=None, mask=None):
  """Boxes (N, 4) x, y, w, h: the init box, then one tracked box a frame."""
  tracker.initialize(frames[0], init_box, ids, mask)
  boxes = [list(map(float, init_box))]
  boxes += [tracker.track(frame) for frame in frames[1:]]
  return np.asarray(boxes, np.float64)
