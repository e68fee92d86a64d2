"""Frame lists and folder checks shared by the readers.

Frame lists are built without listing big folders more than once: where a
layout fixes the file names (LaSOT `img/00000001.jpg`, ...) the list is
generated from the box count and only the first and last names are checked;
otherwise the folder is listed once and sorted by the number in each name.
"""

from __future__ import annotations

import os
import re
import warnings

from input_pipeline.readers.textfiles import read_text_line
from input_pipeline.sequence import DatasetRootError

__all__ = [
    'IMAGE_EXTENSIONS',
    'list_frames',
    'numbered_frames',
    'require_root',
    'subdirs',
    'first_existing',
    'LanguageLog',
]

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
_DIGITS = re.compile(r'(\d+)')


def _frame_key(name: str):
  digits = _DIGITS.findall(name)
  return (int(digits[-1]) if digits else -1, name)


def list_frames(folder: str) -> list[str]:
  """All image files in `folder` (one listing), sorted by the last number in the name."""
  try:
    with os.scandir(folder) as entries:
      names = [
          e.name
          for e in entries
          if e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file()
      ]
  except FileNotFoundError:
    return []
  names.sort(key=_frame_key)
  return [os.path.join(folder, n) for n in names]


def numbered_frames(
    folder: str, count: int, pattern: str, start: int = 1
) -> list[str]:
  """`count` frame paths named by `pattern.format(i)` from `start`.

  Falls back to one listing of `folder` if the first or last generated name
  does not exist (another naming, or a test set whose box file has only the
  first line).
  """
  frames = [
      os.path.join(folder, pattern.format(i))
      for i in range(start, start + count)
  ]
  if frames and os.path.isfile(frames[0]) and os.path.isfile(frames[-1]):
    next_name = os.path.join(folder, pattern.format(start + count))
    if not os.path.isfile(next_name):
      return frames
  listed = list_frames(folder)
  return listed if listed else frames


def require_root(dataset: str, root: str) -> str:
  """Returns `root` if it is a folder, else raises `DatasetRootError` naming the config flag."""
  if not root:
    raise DatasetRootError(dataset, '<empty>', 'no dataset root given')
  if not os.path.isdir(root):
    raise DatasetRootError(dataset, root)
  return root


def subdirs(folder: str) -> list[str]:
  """Sorted names of the sub-folders of `folder` (one listing)."""
  try:
    with os.scandir(folder) as entries:
      return sorted(e.name for e in entries if e.is_dir())
  except FileNotFoundError:
    return []


def first_existing(folder: str, names) -> str | None:
  """The first of `names` that exists inside `folder`, as a full path."""
  for name in names:
    path = os.path.join(folder, name)
    if os.path.exists(path):
      return path
  return None


class LanguageLog:
  """Collects missing language files during one load; `flush` warns once for all of them."""

  def __init__(self, dataset: str):
    self.dataset = dataset
    self.missing: list[str] = []

  def read(self, path: str) -> str:
    """The description in `path` (first non-empty line), or '' if the file is missing."""
    text = read_text_line(path)
    if text is None:
      self.missing.append(path)
      return ''
    return text

  def flush(self):
    if self.missing:
      shown = ', '.join(self.missing[:3]) + (
          ', ...' if len(self.missing) > 3 else ''
      )
      warnings.warn(
          f'{self.dataset}: {len(self.missing)} sequence(s) have no language '
          f'file ({shown}); their language is the empty string',
          stacklevel=3,
      )
    self.missing = []
