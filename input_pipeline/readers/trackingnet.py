"""TrackingNet.

Layout::

    <root>/TRAIN_0 .. TRAIN_11, TEST/
        anno/<video>.txt        x,y,w,h per frame (comma); TEST: first frame only
        frames/<video>/0.jpg    0-based, no zero padding
    <root>/trackingnet_classmap.txt   optional, `<video>\\t<class>` per line (pytracking)

Splits: `train` = every TRAIN_k chunk present, `test` = TEST, `all` = both, or
one chunk by name (`TRAIN_3`).  TrackingNet ships no captions; the class name
from the class map is the language (paper §5.1), '' (one warning) without it.
"""

from __future__ import annotations

import os
import re
import warnings

from cost_jax.errors import InvalidValue
from input_pipeline.readers.frames import numbered_frames, require_root, subdirs
from input_pipeline.readers.textfiles import read_box_file
from input_pipeline.sequence import DatasetRootError, Sequence, build_sequence

CLASSMAP_NAMES = ('trackingnet_classmap.txt', 'classmap.txt')


def chunks_for_split(root: str, split: str) -> list[str]:
  """The chunk folders of `split`, in numeric order."""
  present = subdirs(root)
  train = sorted(
      (c for c in present if re.fullmatch(r'TRAIN_\d+', c)),
      key=lambda c: int(c.split('_')[1]),
  )
  if split == 'train':
    return train
  if split == 'test':
    return [c for c in present if c == 'TEST']
  if split == 'all':
    return train + [c for c in present if c == 'TEST']
  if split in present:
    return [split]
  raise InvalidValue(
      f'trackingnet: unknown split {split!r}',
      'use train, test, all or a chunk name such as TRAIN_0',
  )


def read_classmap(root: str) -> dict[str, str]:
  """Video name -> class name, from the optional class map file."""
  for name in CLASSMAP_NAMES:
    path = os.path.join(root, name)
    if os.path.isfile(path):
      out = {}
      with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
          parts = re.split(r'[\t,]', line.strip(), maxsplit=1)
          if len(parts) == 2:
            out[parts[0].strip()] = parts[1].strip()
      return out
  return {}


def read_chunk(
    chunk_dir: str, chunk: str, classmap: dict[str, str]
) -> list[Sequence]:
  """All sequences of one chunk (lists `anno/` once)."""
  anno_dir = os.path.join(chunk_dir, 'anno')
  names = sorted(f[:-4] for f in os.listdir(anno_dir) if f.endswith('.txt'))
  sequences = []
  for name in names:
    gt_path = os.path.join(anno_dir, name + '.txt')
    boxes = read_box_file(gt_path)
    frames = numbered_frames(
        os.path.join(chunk_dir, 'frames', name),
        boxes.shape[0],
        '{}.jpg',
        start=0,
    )
    cls = classmap.get(name, '')
    sequences.append(
        build_sequence(
            name,
            'trackingnet',
            frames,
            boxes,
            language=cls,
            object_class=cls,
            extra={'chunk': chunk},
            source=gt_path,
            zero_box_is_absent=False,
        )
    )
  return sequences


def load(root: str, split: str = 'test') -> list[Sequence]:
  """Loads the chunks of `split`."""
  require_root('trackingnet', root)
  chunks = chunks_for_split(root, split)
  if not chunks:
    raise DatasetRootError(
        'trackingnet', root, f'no chunk folders for split {split!r}'
    )
  classmap = read_classmap(root)
  if not classmap:
    warnings.warn(
        f'trackingnet: no class map ({" or ".join(CLASSMAP_NAMES)}) in {root}; '
        f'language is the empty string',
        stacklevel=2,
    )
  out = []
  for chunk in chunks:
    if not os.path.isdir(os.path.join(root, chunk, 'anno')):
      raise DatasetRootError(
          'trackingnet',
          os.path.join(root, chunk, 'anno'),
          'missing anno folder',
      )
    out.extend(read_chunk(os.path.join(root, chunk), chunk, classmap))
  return out
