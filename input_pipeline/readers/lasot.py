"""LaSOT and LaSOT_ext.

Layout::

    <root>/<class>/<class>-<k>/img/00000001.jpg ...
                              groundtruth.txt      x,y,w,h per line (comma)
                              full_occlusion.txt   one line of 0/1 flags
                              out_of_view.txt      one line of 0/1 flags
                              nlp.txt              one sentence
    <root>/testing_set.txt, training_set.txt       optional split lists

Visible = not full_occlusion and not out_of_view.  Splits (protocol II):
`test` = the 280 names of `testing_set.txt` (from the root if present, else the
bundled copy), `train` = every other sequence, `all` = everything.  LaSOT_ext
is a test-only set: `test` and `all` give all of it.
"""

from __future__ import annotations

import os

import numpy as np

from cost_jax.errors import InvalidValue
from input_pipeline.readers.frames import LanguageLog, numbered_frames, require_root, subdirs
from input_pipeline.readers.textfiles import read_box_file, read_flags, read_name_list
from input_pipeline.sequence import ROOT_FLAG, ReadError, Sequence, build_sequence, union_masks

_BUNDLED_TEST = os.path.join(
    os.path.dirname(__file__), 'splits', 'lasot_testing_set.txt'
)
_SPLIT_FILES = {
    'test': ('testing_set.txt', 'sequence_evaluation_config/testing_set.txt'),
    'train': (
        'training_set.txt',
        'sequence_evaluation_config/training_set.txt',
    ),
}


def discover(root: str) -> list[str]:
  """All `<class>-<k>` sequence names under `root` (lists each class folder once)."""
  names = []
  for cls in subdirs(root):
    names.extend(
        n
        for n in subdirs(os.path.join(root, cls))
        if n.rsplit('-', 1)[0] == cls
    )
  return names


def _split_list(root: str, split: str, dataset: str) -> list[str] | None:
  """Names listed for `split` in the root's split file or the bundled test list; None = no list."""
  for rel in _SPLIT_FILES.get(split, ()):
    path = os.path.join(root, rel)
    if os.path.isfile(path):
      return read_name_list(path)
  if split == 'test' and dataset == 'lasot':
    return read_name_list(_BUNDLED_TEST)
  return None


def select_names(root: str, split: str, dataset: str) -> list[str]:
  """Sequence names of `split`, in the order of the split list or sorted."""
  if split not in ('train', 'test', 'all'):
    raise InvalidValue(
        f'{dataset}: unknown split {split!r}', 'use train, test or all'
    )
  if dataset == 'lasot_ext' or split == 'all':
    if dataset == 'lasot_ext' and split == 'train':
      raise InvalidValue(
          'lasot_ext is a test-only set', 'use split test or all'
      )
    return discover(root)
  listed = _split_list(root, split, dataset)
  if listed is not None:
    return [
        n
        for n in listed
        if os.path.isdir(os.path.join(root, n.rsplit('-', 1)[0], n))
    ]
  test = set(_split_list(root, 'test', dataset) or ())
  return [
      n for n in discover(root) if n not in test
  ]  # train = all but the test list


def read_sequence(
    root: str, name: str, dataset: str, language_log: LanguageLog
) -> Sequence:
  """Reads one `<class>-<k>` sequence folder."""
  cls = name.rsplit('-', 1)[0]
  folder = os.path.join(root, cls, name)
  gt_path = os.path.join(folder, 'groundtruth.txt')
  if not os.path.isfile(gt_path):
    raise ReadError(
        gt_path,
        'missing box file',
        fix='every LaSOT sequence folder needs groundtruth.txt',
    )
  boxes = read_box_file(gt_path)
  absent = _absence(folder)
  frames = numbered_frames(
      os.path.join(folder, 'img'), boxes.shape[0], '{:08d}.jpg'
  )
  language = language_log.read(os.path.join(folder, 'nlp.txt'))
  return build_sequence(
      name,
      dataset,
      frames,
      boxes,
      absent=absent,
      language=language,
      object_class=cls,
      source=gt_path,
      zero_box_is_absent=False,
  )


def _absence(folder: str) -> np.ndarray | None:
  """full_occlusion OR out_of_view, or None if neither file exists."""
  masks = [
      read_flags(p).astype(bool)
      for p in (
          os.path.join(folder, 'full_occlusion.txt'),
          os.path.join(folder, 'out_of_view.txt'),
      )
      if os.path.isfile(p)
  ]
  return union_masks(*masks)


def load(
    root: str, split: str = 'test', dataset: str = 'lasot'
) -> list[Sequence]:
  """Loads LaSOT (`dataset='lasot'`) or LaSOT_ext (`dataset='lasot_ext'`)."""
  require_root(dataset, root)
  names = select_names(root, split, dataset)
  if not names:
    raise ReadError(
        root,
        f'no {dataset} sequences for split {split!r}',
        fix=f'expected <class>/<class>-<k>/groundtruth.txt folders; check '
        f'{ROOT_FLAG.format(name=dataset)} and the split lists',
    )
  log = LanguageLog(dataset)
  sequences = [read_sequence(root, n, dataset, log) for n in names]
  log.flush()
  return sequences
