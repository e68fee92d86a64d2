"""VL-SOT500 and its subsets VL-SOT230 / VL-SOT270, and the synthetic set.

::

    <root>/VL-SOT230/<Video>/img/000001.jpg, groundtruth_rect.txt, absent.txt,
                             attributes.txt, language.txt
    <root>/VL-SOT270/<Video>/...as above, plus relative_speed.txt

Per-video files follow `mmot_layout`.  Subset folders are matched ignoring case,
'-' and '_'.  A root that holds video folders directly is read as one subset.
VL-SOT500 is a test-only benchmark: the split argument is ignored (all).  The
synthetic generator (`input_pipeline.synthetic`) writes this same layout.
"""

from __future__ import annotations

import os

from input_pipeline.readers import mmot_layout
from input_pipeline.readers.frames import LanguageLog, require_root, subdirs
from input_pipeline.sequence import ROOT_FLAG, ReadError, Sequence

# attributes.txt order (paper Table 2; MMOT experiments/vltot230.py).
ATTRIBUTES = (
    'CM',
    'VC',
    'PO',
    'FO',
    'OV',
    'ROT',
    'DEF',
    'SD',
    'IV',
    'MB',
    'NAO',
    'PTI',
    'BRI',
    'FM',
    'SV',
    'ARV',
    'LEN',
)
CATEGORIES = {
    'BRI': ('low', 'medium', 'high'),
    'LEN': ('short', 'medium', 'long'),
}
SUBSETS = {'vlsot230': 'VL-SOT230', 'vlsot270': 'VL-SOT270'}


def _normalise(name: str) -> str:
  return name.lower().replace('-', '').replace('_', '')


def subset_folders(root: str, dataset: str) -> list[tuple[str, str]]:
  """(subset name, folder) pairs to read for `dataset`."""
  wanted = [SUBSETS[dataset]] if dataset in SUBSETS else list(SUBSETS.values())
  by_key = {_normalise(d): d for d in subdirs(root)}
  found = [
      (s, os.path.join(root, by_key[_normalise(s)]))
      for s in wanted
      if _normalise(s) in by_key
  ]
  if found:
    return found
  if mmot_layout.find_videos(root):  # the root is a subset folder itself
    return [(os.path.basename(os.path.normpath(root)), root)]
  raise ReadError(
      root,
      f'no {" or ".join(wanted)} folder and no video folders',
      fix=f'point {ROOT_FLAG.format(name=dataset)} at the folder holding '
      f'{" and ".join(wanted)}',
  )


def load(
    root: str, split: str = 'test', dataset: str = 'vlsot500'
) -> list[Sequence]:
  """Loads VL-SOT500 (both subsets), `vlsot230`, `vlsot270`, or a synthetic set."""
  require_root(dataset, root)
  log = LanguageLog(dataset)
  sequences = []
  for subset, folder in subset_folders(root, dataset):
    for video in mmot_layout.find_videos(folder):
      sequences.append(
          mmot_layout.read_video(
              video,
              dataset,
              log,
              ATTRIBUTES,
              CATEGORIES,
              extra={'subset': subset},
          )
      )
  log.flush()
  return sequences
