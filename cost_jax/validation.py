"""Periodic validation during training: track a few held-out videos, log AUC.

The training losses say whether the network fits its pairs, not whether the
tracker built on it follows a target through a video. `Validator` tracks a
handful of held-out sequences (frames kept in memory) with the current
weights and returns the success AUC and precision at 20 px over their
visible frames, next to the same scores of the static baseline (the first
box held) and of the NCC template matcher on the same videos, so a reader
of `metrics.jsonl` sees whether learning has beaten methods that learn
nothing. Tracking uses the cached compilations of `cost_jax.tracking`
(one compilation per run).
"""

from __future__ import annotations

import time

import numpy as np

from cost_jax.evaluation import metrics
from cost_jax.tracking import bad_frames, ncc
from cost_jax.tracking.tracker import Tracker


def sequence_scores(boxes, truth, visible) -> tuple[float, float]:
  """(success AUC, precision at 20 px) over the visible frames after the
  first (the initialisation frame is given, not tracked)."""
  keep = np.asarray(visible, bool).copy()
  keep[0] = False
  if not keep.any():
    return float('nan'), float('nan')
  pred, gt = np.asarray(boxes)[keep], np.asarray(truth)[keep]
  auc = metrics.curve_auc(metrics.success_curve(metrics.iou(pred, gt)))
  precision = float(np.mean(metrics.center_error(pred, gt) <= 20.0))
  return auc, precision


def mean_scores(per_sequence) -> dict:
  """Means over the sequences that have visible frames, in %."""
  rows = np.asarray([s for s in per_sequence if np.all(np.isfinite(s))])
  if not len(rows):
    return {'auc': float('nan'), 'p20': float('nan')}
  auc, p20 = rows.mean(0) * 100
  return {'auc': float(auc), 'p20': float(p20)}


class Validator:
  """Tracks `sequences` (readers' `Sequence`s) with given weights."""

  def __init__(self, config, sequences, prefix: str = 'val_'):
    self.config = config
    self.prefix = prefix
    self.sequences = list(sequences)
    self.frames = [
        [bad_frames.read_or_none(p) for p in s.frames] for s in self.sequences
    ]
    self.baselines = self._baselines()

  def _baselines(self) -> dict:
    static, matched = [], []
    for seq, frames in zip(self.sequences, self.frames):
      held = np.repeat(seq.init_box[None], len(seq), axis=0)
      static.append(sequence_scores(held, seq.boxes, seq.visible))
      boxes, _ = ncc.track(frames, seq.init_box)
      matched.append(sequence_scores(boxes, seq.boxes, seq.visible))
    out = {}
    for name, rows in (('static', static), (ncc.NAME, matched)):
      for key, value in mean_scores(rows).items():
        out[f'{self.prefix}{key}_{name}'] = value
    return out

  def track(self, tracker: Tracker, seq, frames) -> np.ndarray:
    tracker.initialize(frames[0], seq.init_box, seq.language)
    boxes = [np.asarray(seq.init_box, np.float64)]
    for frame in frames[1:]:
      boxes.append(boxes[-1] if frame is None else tracker.track(frame)[0])
    return np.stack(boxes)

  def __call__(self, variables) -> dict:
    """{'val_auc', 'val_p20', 'val_s', and the baselines' scores}."""
    start = time.time()
    tracker = Tracker(self.config, variables)
    rows = [
        sequence_scores(self.track(tracker, s, f), s.boxes, s.visible)
        for s, f in zip(self.sequences, self.frames)
    ]
    out = {f'{self.prefix}{k}': v for k, v in mean_scores(rows).items()}
    out[f'{self.prefix}s'] = time.time() - start
    out.update(self.baselines)
    return out
