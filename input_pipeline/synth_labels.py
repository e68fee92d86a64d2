"""Labels of a sampled synthetic scene (input_pipeline.synth_scene): the
visible target box per frame with its out-of-view / occlusion flags, and the
17 VL-SOT500 attributes of the video.
"""

from __future__ import annotations

import numpy as np

from input_pipeline.synth_scene import Scene, covered_fraction, object_box


def annotate(scene: Scene) -> dict[str, np.ndarray]:
  """Per-frame labels: the visible part of the target box (NaN when absent) and the flags.

  Out of view: the box lies outside the image.  Full occlusion: the occluder
  covers >= 98% of the visible box; partial occlusion: more than 10%.
  """
  n, w, h = scene.num_frames, scene.width, scene.height
  boxes = np.full((n, 4), np.nan)
  flags = {
      k: np.zeros(n, bool)
      for k in ('out_of_view', 'full_occlusion', 'partial_occlusion')
  }
  for t in range(n):
    x, y, bw, bh = object_box(scene.target, t)
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + bw, w), min(y + bh, h)
    if x1 - x0 < 1 or y1 - y0 < 1:
      flags['out_of_view'][t] = True
      continue
    covered = covered_fraction((x0, y0, x1, y1), scene.occluder, t)
    flags['full_occlusion'][t] = covered >= 0.98
    flags['partial_occlusion'][t] = 0.1 < covered < 0.98
    if not flags['full_occlusion'][t]:
      boxes[t] = (x0, y0, x1 - x0, y1 - y0)
  flags['absent'] = flags['out_of_view'] | flags['full_occlusion']
  return dict(flags, boxes=boxes)


def attribute_vector(
    scene: Scene, labels: dict, brightness: float, relative_speed: float
) -> list[int]:
  """The 17 VL-SOT500 attributes (paper Table 2 order) of a synthetic video."""
  boxes = labels['boxes'][~labels['absent']]
  area = boxes[:, 2] * boxes[:, 3]
  aspect = boxes[:, 2] / boxes[:, 3]
  n = scene.num_frames
  return [
      int(scene.camera_jumps),  # CM
      0,  # VC
      int(labels['partial_occlusion'].any()),  # PO
      int(labels['full_occlusion'].any()),  # FO
      int(labels['out_of_view'].any()),  # OV
      int(scene.rotates),  # ROT
      0,  # DEF
      int(bool(scene.distractors)),  # SD
      int(np.ptp(scene.gain) > 0.15),  # IV
      int(scene.high_speed),  # MB (blur is rendered)
      1,  # NAO: artificial
      int(labels['partial_occlusion'][0]),  # PTI
      0 if brightness <= 83 else (1 if brightness <= 119 else 2),  # BRI
      int(relative_speed > 1),  # FM
      int(_outside(area / area[0])),  # SV
      int(_outside(aspect / aspect[0])),  # ARV
      0 if n <= 600 else (1 if n <= 1800 else 2),  # LEN
  ]


def _outside(ratios: np.ndarray, lo: float = 0.5, hi: float = 2.0) -> bool:
  return bool(ratios.size and (ratios.min() < lo or ratios.max() > hi))
