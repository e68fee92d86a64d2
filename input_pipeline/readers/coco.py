"""COCO as 1-frame pseudo-sequences.

Layout (pytracking's, or the plain COCO download)::

    <root>/annotations/instances_{train,val}{2017,2014}.json
    <root>/images/{train,val}2017/<file_name>   or   <root>/{train,val}2017/<file_name>

Every non-crowd instance becomes one 1-frame `Sequence` whose language and
object class are its category name.  The JSON is big (~450 MB for train2017):
it is parsed once with an `object_hook` that keeps only the fields used (so
segmentation polygons are dropped as they are parsed), the instances are kept
in numpy arrays, and `load` returns a `LazySequences` list-like that builds each
`Sequence` on access instead of ~860k objects up front.
"""

from __future__ import annotations

import collections.abc
import json
import os

import numpy as np

from cost_jax.errors import InvalidValue
from input_pipeline.readers.frames import require_root
from input_pipeline.sequence import DatasetRootError, ReadError, Sequence, box_validity

SPLITS = ('train', 'val')
YEARS = ('2017', '2014')


class LazySequences(collections.abc.Sequence):
  """A read-only list of sequences built on access by `make(i)`."""

  def __init__(self, length: int, make):
    self._length = length
    self._make = make

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index):
    if isinstance(index, slice):
      return [self._make(i) for i in range(*index.indices(self._length))]
    if index < 0:
      index += self._length
    if not 0 <= index < self._length:
      raise IndexError(index)
    return self._make(index)


def _slim(obj: dict):
  """object_hook: keeps only the fields of images, annotations and categories that are used."""
  if 'bbox' in obj and 'image_id' in obj:
    return (
        'ann',
        obj['image_id'],
        obj.get('category_id', -1),
        obj['bbox'],
        obj.get('iscrowd', 0),
        obj.get('id', -1),
    )
  if 'file_name' in obj and 'id' in obj:
    return (
        'img',
        obj['id'],
        obj['file_name'],
        obj.get('width', 0),
        obj.get('height', 0),
    )
  if 'supercategory' in obj or (
      'name' in obj and 'id' in obj and len(obj) <= 4
  ):
    return ('cat', obj['id'], obj.get('name', ''), obj.get('supercategory', ''))
  return obj


def _annotation_file(root: str, split: str) -> tuple[str, str]:
  for year in YEARS:
    path = os.path.join(root, 'annotations', f'instances_{split}{year}.json')
    if os.path.isfile(path):
      return path, year
  raise DatasetRootError(
      'coco',
      os.path.join(root, 'annotations'),
      f'no annotations/instances_{split}2017.json (or 2014)',
  )


def _image_dir(root: str, split: str, year: str) -> str:
  for rel in (os.path.join('images', f'{split}{year}'), f'{split}{year}'):
    if os.path.isdir(os.path.join(root, rel)):
      return os.path.join(root, rel)
  return os.path.join(root, 'images', f'{split}{year}')


class CocoIndex:
  """The parsed instances of one annotation file, as compact arrays."""

  def __init__(self, path: str, image_dir: str):
    try:
      with open(path, 'rb') as f:
        data = json.load(f, object_hook=_slim)
    except json.JSONDecodeError as err:
      raise ReadError(
          path,
          f'invalid JSON ({err.msg})',
          line=err.lineno,
          fix='re-download the annotation file',
      ) from None
    images = {img[1]: img[2:] for img in data.get('images', [])}
    self.categories = {c[1]: c[2] for c in data.get('categories', [])}
    anns = [a for a in data.get('annotations', []) if not a[4]]  # drop iscrowd
    self.image_ids = np.array([a[1] for a in anns], dtype=np.int64)
    self.category_ids = np.array([a[2] for a in anns], dtype=np.int64)
    self.ann_ids = np.array([a[5] for a in anns], dtype=np.int64)
    self.boxes = np.array([a[3] for a in anns], dtype=np.float64).reshape(-1, 4)
    self.valid = box_validity(self.boxes)[0]
    self.files = {
        i: os.path.join(image_dir, images[i][0])
        for i in set(self.image_ids.tolist())
        if i in images
    }
    self.sizes = {i: (images[i][1], images[i][2]) for i in self.files}
    missing = set(self.image_ids.tolist()) - set(self.files)
    if missing:
      raise ReadError(
          path,
          f'{len(missing)} annotations refer to unknown image ids '
          f'(e.g. {sorted(missing)[0]})',
          fix='re-download the file',
      )

  def sequence(self, i: int) -> Sequence:
    """Instance i as a 1-frame sequence (built directly: ~860k of these for train2017)."""
    image_id = int(self.image_ids[i])
    name = self.categories.get(int(self.category_ids[i]), '')
    valid = bool(self.valid[i])
    invalid = {} if valid else {self.invalid_reason(i): 1}
    return Sequence(
        name=f'{image_id:012d}_{int(self.ann_ids[i])}',
        dataset='coco',
        frames=[self.files[image_id]],
        boxes=self.boxes[i : i + 1],
        visible=np.array([valid]),
        language=name,
        attributes={},
        object_class=name,
        extra={
            'image_size': self.sizes[image_id],
            'image_id': image_id,
            'invalid_boxes': invalid,
        },
    )

  def invalid_reason(self, i: int) -> str:
    return (
        'nan' if not np.all(np.isfinite(self.boxes[i])) else 'non_positive_size'
    )


def load(root: str, split: str = 'train') -> LazySequences:
  """Loads the non-crowd instances of `split` (train or val) as lazy 1-frame sequences."""
  require_root('coco', root)
  if split not in SPLITS:
    raise InvalidValue(
        f'coco: unknown split {split!r}', 'use train or val (test has no boxes)'
    )
  path, year = _annotation_file(root, split)
  index = CocoIndex(path, _image_dir(root, split, year))
  return LazySequences(len(index.image_ids), index.sequence)
