"""The per-video layout of the MMOT toolkit family: WebUAV-3M, VL-SOT500 (and WebUOT-1M).

::

    <video>/img/000001.jpg ...      (README: imgs/; both accepted; 6 digits from 1)
            000001.jpg              root-level preview with the box drawn: ignored
            groundtruth_rect.txt    x,y,w,h (comma); absent frames 0,0,0,0
            absent.txt              per-frame 0/1 (one per line or comma-separated)
            attributes.txt          17 comma-separated numbers (names per dataset)
            language.txt            one sentence
            relative_speed.txt      VL-SOT270 only: one number (the video's average
                                    relative speed) or one per frame
            scenario.txt            WebUAV-3M only: 7 per-frame indicators (path kept)

The meaning of absent.txt is undocumented.  The first frame always shows the
target (it initialises the tracker), so a file whose first flag is 1 is read as
an existence mask (1 = present, like pysot's LaSOT json); otherwise 1 = absent.
The reading used is recorded in `extra['absent_file']`.
"""

from __future__ import annotations

import os

import numpy as np

from input_pipeline.readers.frames import LanguageLog, numbered_frames, subdirs
from input_pipeline.readers.textfiles import read_box_file, read_flags, read_table
from input_pipeline.sequence import ReadError, Sequence, build_sequence

GT_NAME = 'groundtruth_rect.txt'


def find_videos(folder: str) -> list[str]:
  """Sub-folders of `folder` that hold groundtruth_rect.txt (sorted)."""
  return [
      os.path.join(folder, n)
      for n in subdirs(folder)
      if os.path.isfile(os.path.join(folder, n, GT_NAME))
  ]


def read_absent(path: str) -> tuple[np.ndarray | None, str]:
  """Per-frame absence mask from absent.txt and how the file was read."""
  if not os.path.isfile(path):
    return None, 'missing'
  flags = read_flags(path)
  if flags.size and flags[0] == 1:
    return flags == 0, 'existence (1 = present)'
  return flags == 1, 'absence (1 = absent)'


def read_attributes(
    path: str, names: tuple[str, ...], categories: dict[str, tuple[str, ...]]
) -> tuple[dict[str, bool], list[float]]:
  """Named attributes: binary entries as bools, categorical ones one-hot (`BRI_low`)."""
  if not os.path.isfile(path):
    return {}, []
  values = read_flags(path).tolist()
  out = {}
  for name, value in zip(names, values):
    if name in categories:
      for k, label in enumerate(categories[name]):
        out[f'{name}_{label}'] = value == k
    else:
      out[name] = bool(value)
  return out, values


def read_relative_speed(path: str) -> dict:
  """extra entries for relative_speed.txt: the video value and, if given, per-frame values."""
  if not os.path.isfile(path):
    return {}
  values = read_table(path).reshape(-1)
  if values.size == 0:
    return {}
  out = {'relative_speed': float(np.nanmean(values))}
  if values.size > 1:
    out['relative_speed_per_frame'] = values
  return out


def frame_folder(video: str) -> str:
  for name in ('img', 'imgs'):
    if os.path.isdir(os.path.join(video, name)):
      return os.path.join(video, name)
  raise ReadError(
      os.path.join(video, 'img'),
      'no frame folder',
      fix='put the frames in img/ (or imgs/) as 000001.jpg, 000002.jpg, ...',
  )


def read_video(
    video: str,
    dataset: str,
    log: LanguageLog,
    attribute_names: tuple[str, ...],
    categories: dict[str, tuple[str, ...]],
    extra: dict | None = None,
) -> Sequence:
  """Reads one video folder of this layout."""
  gt_path = os.path.join(video, GT_NAME)
  boxes = read_box_file(gt_path)
  frames = numbered_frames(frame_folder(video), boxes.shape[0], '{:06d}.jpg')
  absent, how = read_absent(os.path.join(video, 'absent.txt'))
  attributes, values = read_attributes(
      os.path.join(video, 'attributes.txt'), attribute_names, categories
  )
  extra = dict(extra or {}, absent_file=how, attribute_values=values)
  extra.update(read_relative_speed(os.path.join(video, 'relative_speed.txt')))
  scenario = os.path.join(video, 'scenario.txt')
  if os.path.isfile(scenario):
    extra['scenario_path'] = scenario
  return build_sequence(
      os.path.basename(video),
      dataset,
      frames,
      boxes,
      absent=absent,
      language=log.read(os.path.join(video, 'language.txt')),
      attributes=attributes,
      extra=extra,
      source=gt_path,
  )
