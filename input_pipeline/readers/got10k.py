"""GOT-10k.

Layout::

    <root>/{train,val,test}/list.txt          one sequence name per line
    <root>/<split>/<seq>/00000001.jpg ...
                        groundtruth.txt       x,y,w,h (comma); test: first line only
                        absence.label         0/1 per line
                        cover.label           0..8 per line (visible eighths)
                        meta_info.ini         [METAINFO] then `key: value` lines

Visible = not absent and cover > 0 (pytracking).  GOT-10k has no captions: the
language is the paper's pseudo-description (§5.1), the words of the major
class followed by the motion class, e.g. "dog running"; `object_class` is the
meta `object_class` and the whole meta dict is kept in `extra['meta']`.
"""

from __future__ import annotations

import os

import numpy as np

from cost_jax.errors import InvalidValue
from input_pipeline.readers.frames import numbered_frames, require_root
from input_pipeline.readers.textfiles import (
    read_box_file,
    read_flags,
    read_key_values,
    read_name_list,
)
from input_pipeline.sequence import (
    DatasetRootError,
    ReadError,
    Sequence,
    build_sequence,
    union_masks,
)

SPLITS = ('train', 'val', 'test')
# Line positions used by pytracking / All-in-One / UVLTrack when keys are missing.
_POSITIONAL_KEYS = {
    5: 'object_class',
    6: 'motion_class',
    7: 'major_class',
    8: 'root_class',
    9: 'motion_adverb',
}


def read_meta(path: str) -> dict[str, str]:
  """meta_info.ini as a dict; falls back to line positions 5-9 when keys are absent."""
  if not os.path.isfile(path):
    return {}
  meta = read_key_values(path)
  if 'major_class' not in meta:
    with open(path, encoding='utf-8', errors='replace') as f:
      lines = f.read().splitlines()
    for pos, key in _POSITIONAL_KEYS.items():
      if pos < len(lines) and key not in meta:
        meta[key] = lines[pos].split(':', 1)[-1].strip()
  return meta


def pseudo_language(meta: dict[str, str]) -> str:
  """ "<major class> <motion class>", e.g. "dog running" (paper §5.1), underscores as spaces."""
  words = [meta.get('major_class', ''), meta.get('motion_class', '')]
  words = [
      w.replace('_', ' ').strip()
      for w in words
      if w and w.lower() not in ('none', 'unknown')
  ]
  return ' '.join(words)


def read_sequence(split_dir: str, name: str) -> Sequence:
  """Reads one GOT-10k sequence folder."""
  folder = os.path.join(split_dir, name)
  gt_path = os.path.join(folder, 'groundtruth.txt')
  if not os.path.isfile(gt_path):
    raise ReadError(
        gt_path,
        'missing box file',
        fix='each sequence listed in list.txt needs groundtruth.txt',
    )
  boxes = read_box_file(gt_path)
  frames = numbered_frames(folder, boxes.shape[0], '{:08d}.jpg')
  meta = read_meta(os.path.join(folder, 'meta_info.ini'))
  extra = {'meta': meta}
  absent = _optional_flags(os.path.join(folder, 'absence.label'))
  cover = _optional_flags(os.path.join(folder, 'cover.label'))
  if cover is not None:
    extra['cover'] = cover
  hidden = union_masks(
      None if absent is None else absent.astype(bool),
      None if cover is None else cover == 0,
  )
  return build_sequence(
      name,
      'got10k',
      frames,
      boxes,
      absent=hidden,
      language=pseudo_language(meta),
      object_class=meta.get('object_class', ''),
      extra=extra,
      source=gt_path,
      zero_box_is_absent=False,
  )


def _optional_flags(path: str) -> np.ndarray | None:
  return read_flags(path) if os.path.isfile(path) else None


def load(root: str, split: str = 'test') -> list[Sequence]:
  """Loads the sequences of `<root>/<split>/list.txt`."""
  require_root('got10k', root)
  if split not in SPLITS:
    raise InvalidValue(
        f'got10k: unknown split {split!r}', f'use one of {SPLITS}'
    )
  split_dir = os.path.join(root, split)
  list_path = os.path.join(split_dir, 'list.txt')
  if not os.path.isfile(list_path):
    raise DatasetRootError('got10k', list_path, f'no {split}/list.txt')
  return [read_sequence(split_dir, name) for name in read_name_list(list_path)]
