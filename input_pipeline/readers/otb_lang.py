"""OTB99-Lang (Li et al. 2017).

Layout::

    <root>/OTB_videos/<Seq>/img/0001.jpg ...
                            groundtruth_rect.txt   comma OR tab/space separated
    <root>/OTB_query_train/<Seq>.txt               51 sentences
    <root>/OTB_query_test/<Seq>.txt                48 sentences

Split `train` / `test` = the sequences with a query file in that folder, `all`
= both.  The `img/` folder is listed once.  When it holds more frames than the
box file has rows, the OTB-100 start offsets (David 300, BlurCar1 247,
BlurCar3 3, BlurCar4 18, from pytracking / got10k) are applied if they make
the counts match; other mismatches keep the first frames, with a warning.
"""

from __future__ import annotations

import os
import warnings

from cost_jax.errors import InvalidValue
from input_pipeline.readers.frames import LanguageLog, first_existing, list_frames, require_root
from input_pipeline.readers.textfiles import read_box_file
from input_pipeline.sequence import DatasetRootError, ReadError, Sequence, build_sequence

QUERY_DIRS = {'train': 'OTB_query_train', 'test': 'OTB_query_test'}
START_FRAME = {'David': 300, 'BlurCar1': 247, 'BlurCar3': 3, 'BlurCar4': 18}
_GT_NAMES = ('groundtruth_rect.txt', 'groundtruth.txt')


def split_names(root: str, split: str) -> dict[str, str]:
  """Sequence name -> query file path for `split`."""
  if split not in ('train', 'test', 'all'):
    raise InvalidValue(
        f'otb99_lang: unknown split {split!r}', 'use train, test or all'
    )
  out = {}
  for part in (('train', 'test') if split == 'all' else (split,)):
    folder = os.path.join(root, QUERY_DIRS[part])
    if not os.path.isdir(folder):
      raise DatasetRootError(
          'otb99_lang', folder, f'no {QUERY_DIRS[part]} folder'
      )
    for fname in sorted(os.listdir(folder)):
      if fname.endswith('.txt'):
        out[fname[:-4]] = os.path.join(folder, fname)
  return out


def align_frames(
    name: str, frames: list[str], n_boxes: int, source: str
) -> list[str]:
  """Drops leading frames so that frames and boxes line up (OTB-100 quirks)."""
  if len(frames) <= n_boxes:
    return frames
  start = START_FRAME.get(name)
  if start is not None and len(frames) - (start - 1) >= n_boxes:
    return frames[start - 1 : start - 1 + n_boxes]
  warnings.warn(
      f'{source}: {n_boxes} boxes for {len(frames)} frames; using the first '
      f'{n_boxes} frames',
      stacklevel=2,
  )
  return frames[:n_boxes]


def read_video(root: str, name: str, query: str, log: LanguageLog) -> Sequence:
  folder = os.path.join(root, 'OTB_videos', name)
  gt_path = first_existing(folder, _GT_NAMES)
  if gt_path is None:
    raise ReadError(
        os.path.join(folder, _GT_NAMES[0]),
        'missing box file',
        fix=f'every sequence with a query file needs OTB_videos/{name}/'
        f'groundtruth_rect.txt',
    )
  boxes = read_box_file(gt_path)
  frames = align_frames(
      name, list_frames(os.path.join(folder, 'img')), boxes.shape[0], gt_path
  )
  return build_sequence(
      name,
      'otb99_lang',
      frames,
      boxes,
      language=log.read(query),
      source=gt_path,
      zero_box_is_absent=False,
  )


def load(root: str, split: str = 'test') -> list[Sequence]:
  """Loads the OTB99-Lang sequences of `split`."""
  require_root('otb99_lang', root)
  log = LanguageLog('otb99_lang')
  sequences = [
      read_video(root, n, q, log) for n, q in split_names(root, split).items()
  ]
  log.flush()
  return sequences
