"""WebUAV-3M, in the MMOT per-video layout (see `mmot_layout`).

::

    <root>/{Train,Val,Test}/<Video>/img/000001.jpg, groundtruth_rect.txt, absent.txt,
                                    attributes.txt, language.txt, scenario.txt

Splits: `train`, `val`, `test` (folder names matched case-insensitively), `all`.
"""

from __future__ import annotations

import os

from cost_jax.errors import InvalidValue
from input_pipeline.readers import mmot_layout
from input_pipeline.readers.frames import LanguageLog, require_root, subdirs
from input_pipeline.sequence import DatasetRootError, Sequence

# attributes.txt order (MMOT experiments/webuav3m.py); the last three are 0/1/2 categories.
ATTRIBUTES = (
    'LR',
    'PO',
    'FO',
    'OV',
    'FM',
    'CM',
    'VC',
    'ROT',
    'DEF',
    'BC',
    'SV',
    'ARV',
    'IV',
    'MB',
    'COMPLEXITY',
    'SIZE',
    'LEN',
)
CATEGORIES = {
    'COMPLEXITY': ('easy', 'medium', 'hard'),
    'SIZE': ('small', 'medium', 'large'),
    'LEN': ('short', 'medium', 'long'),
}
SPLITS = ('train', 'val', 'test')


def split_folders(root: str, split: str) -> list[str]:
  if split not in SPLITS + ('all',):
    raise InvalidValue(
        f'webuav3m: unknown split {split!r}', 'use train, val, test or all'
    )
  wanted = SPLITS if split == 'all' else (split,)
  folders = [
      os.path.join(root, d) for d in subdirs(root) if d.lower() in wanted
  ]
  if not folders:
    raise DatasetRootError(
        'webuav3m', root, f'no {split} folder (Train/Val/Test)'
    )
  return folders


def load(root: str, split: str = 'test') -> list[Sequence]:
  """Loads the WebUAV-3M videos of `split`."""
  require_root('webuav3m', root)
  log = LanguageLog('webuav3m')
  sequences = []
  for folder in split_folders(root, split):
    for video in mmot_layout.find_videos(folder):
      sequences.append(
          mmot_layout.read_video(
              video,
              'webuav3m',
              log,
              ATTRIBUTES,
              CATEGORIES,
              extra={'split': os.path.basename(folder)},
          )
      )
  log.flush()
  return sequences
