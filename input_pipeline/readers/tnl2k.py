"""TNL2K.

Per-video folder::

    <video>/imgs/00001.jpg|png ...   frames (mixed extensions: the folder is listed)
            groundtruth.txt          x,y,w,h (comma); absent frames are 0,0,0,0
            language.txt             one sentence (commas kept)
            attributes.txt           optional (test): 17 flags, one per line or comma-separated

Video folders are found up to three levels below the split folder, because
copies differ (`<root>/<video>`, `<root>/TNL2K_test_subset/<video>`,
`<root>/test/<chunk>/<video>`).  The split folder is the first sub-folder of
the root whose name contains the split word (`test`, `train`), else the root;
split lists (`TNL2K_testing_set.txt` / `TNL2K_train_set.txt`, in the root or
`sequence_evaluation_config/`) filter by name when present.  Without either,
the split is `all`.
"""

from __future__ import annotations

import os

from cost_jax.errors import InvalidValue
from input_pipeline.readers.frames import LanguageLog, list_frames, require_root, subdirs
from input_pipeline.readers.textfiles import read_box_file, read_flags, read_name_list
from input_pipeline.sequence import ROOT_FLAG, ReadError, Sequence, build_sequence

# Order of the toolkit's att files (Evaluate_TNL2K_dataset.m).
ATTRIBUTES = (
    'CM',
    'ROT',
    'DEF',
    'FOC',
    'IV',
    'OV',
    'POC',
    'VC',
    'SV',
    'BC',
    'MB',
    'ARC',
    'LR',
    'FM',
    'AS',
    'TC',
    'MS',
)
_SPLIT_LISTS = {'test': 'TNL2K_testing_set.txt', 'train': 'TNL2K_train_set.txt'}
_SPLIT_WORDS = {'test': 'test', 'train': 'train'}


def find_videos(base: str, depth: int = 3) -> list[str]:
  """Folders holding groundtruth.txt, at most `depth` levels below `base` (sorted)."""
  found = []
  for name in subdirs(base):
    path = os.path.join(base, name)
    if os.path.isfile(os.path.join(path, 'groundtruth.txt')):
      found.append(path)
    elif depth > 1 and name.lower() not in ('imgs', 'img'):
      found.extend(find_videos(path, depth - 1))
  return found


def split_base(root: str, split: str) -> str:
  """The sub-folder of `root` that holds `split`, or `root` itself."""
  word = _SPLIT_WORDS.get(split)
  if word:
    for name in subdirs(root):
      path = os.path.join(root, name)
      if word in name.lower() and not os.path.isfile(
          os.path.join(path, 'groundtruth.txt')
      ):
        return path
  return root


def split_names(root: str, split: str) -> set[str] | None:
  """Names in the split list file, or None if there is none."""
  fname = _SPLIT_LISTS.get(split)
  for folder in (root, os.path.join(root, 'sequence_evaluation_config')):
    if fname and os.path.isfile(os.path.join(folder, fname)):
      return set(read_name_list(os.path.join(folder, fname)))
  return None


def read_attributes(path: str, names=ATTRIBUTES) -> dict[str, bool]:
  """Named 0/1 attribute flags (empty dict if the file is missing)."""
  if not os.path.isfile(path):
    return {}
  flags = read_flags(path)
  return {name: bool(v) for name, v in zip(names, flags)}


def read_video(folder: str, log: LanguageLog) -> Sequence:
  gt_path = os.path.join(folder, 'groundtruth.txt')
  boxes = read_box_file(gt_path)
  frames = list_frames(os.path.join(folder, 'imgs')) or list_frames(
      os.path.join(folder, 'img')
  )
  if not frames:
    raise ReadError(
        os.path.join(folder, 'imgs'),
        'no frames found',
        fix='each TNL2K video needs an imgs/ folder of .jpg/.png frames',
    )
  return build_sequence(
      os.path.basename(folder),
      'tnl2k',
      frames,
      boxes,
      language=log.read(os.path.join(folder, 'language.txt')),
      attributes=read_attributes(os.path.join(folder, 'attributes.txt')),
      source=gt_path,
  )


def load(root: str, split: str = 'test') -> list[Sequence]:
  """Loads the TNL2K videos of `split` (train, test or all)."""
  require_root('tnl2k', root)
  if split not in ('train', 'test', 'all'):
    raise InvalidValue(
        f'tnl2k: unknown split {split!r}', 'use train, test or all'
    )
  folders = find_videos(split_base(root, split))
  names = split_names(root, split)
  if names is not None:
    folders = [f for f in folders if os.path.basename(f) in names]
  if not folders:
    raise ReadError(
        root,
        f'no TNL2K videos for split {split!r}',
        fix='expected <video>/groundtruth.txt folders; check '
        + ROOT_FLAG.format(name='tnl2k'),
    )
  log = LanguageLog('tnl2k')
  sequences = [read_video(f, log) for f in folders]
  log.flush()
  return sequences
