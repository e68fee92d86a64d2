"""Unreadable frames while tracking: counted, named, carried over, or the end of a run.

A frame that cannot be decoded (truncated, not an image) gets the last box
carried over it: the tracker's state does not move, and the next readable
frame is searched around the same place.  ``config.track.on_bad_frame``:

* ``'skip'`` (default): warn naming the file and go on; the run stops once
  more than ``config.track.max_bad_frames`` frames of one video (one
  sequence) were unreadable;
* ``'stop'``: the first unreadable frame ends the run (what was tracked
  before it is kept).

The first frame must be readable: the initial box refers to it.
"""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np

from input_pipeline import augment

__all__ = [
    'POLICIES',
    'FrameReadError',
    'BadFramesError',
    'BadFrames',
    'read_frame',
    'read_or_error',
    'check_policy',
    'listing',
    'line',
]

POLICIES = ('skip', 'stop')


class FrameReadError(OSError):
  """A frame that is missing or cannot be decoded; names the file (``path``)."""

  def __init__(self, message: str, path: str = ''):
    super().__init__(message)
    self.path = path


class BadFramesError(OSError):
  """A run stopped at unreadable frames (on_bad_frame=stop or past the threshold)."""


def read_frame(path: str, sequence: str = '') -> np.ndarray:
  """The frame at ``path`` as HxWx3 uint8 RGB, or FrameReadError naming the file.

  A truncated JPEG (which libjpeg would complete with grey) is unreadable too.
  """

  where = f' of sequence {sequence!r}' if sequence else ''
  try:
    with open(path, 'rb') as f:
      data = f.read()
    image = augment.decode_frame(data, path)
  except FileNotFoundError:
    raise FrameReadError(f'frame {path}{where} is missing', path) from None
  except (OSError, augment.FrameError) as e:
    why = getattr(e, 'reason', None) or e.strerror or str(e)
    raise FrameReadError(
        f'frame {path}{where} is unreadable ({why})', path
    ) from None
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_or_error(path: str, sequence: str = ''):
  """`read_frame`, with an unreadable frame returned as its FrameReadError."""
  try:
    return read_frame(path, sequence)
  except FrameReadError as e:
    return e


def read_or_none(path: str):
  """`read_frame`, with None for an unreadable frame (trackers carry their box over it)."""
  try:
    return read_frame(path)
  except FrameReadError:
    return None


def listing(frames, shown: int = 5) -> str:
  """'N unreadable frame(s) skipped (last box carried over): #i path, ...' of (index, path)s."""
  listed = ', '.join(f'#{i} {p}' for i, p in frames[:shown])
  more = f', ... ({len(frames) - shown} more)' if len(frames) > shown else ''
  return f'{len(frames)} unreadable frame(s) skipped (last box carried over): {listed}{more}'


def check_policy(config) -> tuple[str, int]:
  """(on_bad_frame, max_bad_frames) of ``config.track``, or ValueError naming the flag."""
  policy = config.track.get('on_bad_frame', 'skip')
  limit = int(config.track.get('max_bad_frames', 50))
  if policy not in POLICIES:
    raise ValueError(
        f'--config.track.on_bad_frame={policy!r}: use one of {", ".join(POLICIES)}'
    )
  if limit < 0:
    raise ValueError(f'--config.track.max_bad_frames={limit}: use 0 or more')
  return policy, limit


@dataclasses.dataclass
class BadFrames:
  """The unreadable frames of one video or sequence, and whether to stop there."""

  name: str
  policy: str = 'skip'
  limit: int = 50
  frames: list = dataclasses.field(default_factory=list)  # [(index, path)]

  @classmethod
  def from_config(cls, config, name: str) -> 'BadFrames':
    policy, limit = check_policy(config)
    return cls(name, policy, limit)

  def add(self, index: int, error: FrameReadError) -> bool:
    """Counts and warns about frame ``index``; True when the run must stop there."""
    path = getattr(error, 'path', '') or str(error)
    self.frames.append((index, path))
    logging.warning(
        '%s: frame %d skipped (%s); the last box is carried over it (%d '
        'unreadable so far)',
        self.name,
        index,
        error,
        len(self.frames),
    )
    return self.policy == 'stop' or len(self.frames) > self.limit

  def stop_reason(self) -> str:
    """Why the run stopped at the last added frame."""
    index, path = self.frames[-1]
    why = (
        '--config.track.on_bad_frame=stop'
        if self.policy == 'stop'
        else f'more than --config.track.max_bad_frames={self.limit}'
    )
    return f'{self.name}: stopped at unreadable frame {index} ({path}): {why}'

  def summary(self) -> str:
    """'<name>: N unreadable frame(s) skipped (last box carried over): #i path, ...' or ''."""
    return f'{self.name}: {listing(self.frames)}' if self.frames else ''

  def lines(self) -> str:
    """The ``bad_frames.txt`` text: ``frame,path`` per unreadable frame."""
    return ''.join(line(i, p) for i, p in self.frames)


def line(index: int, path: str) -> str:
  """One line of a ``bad_frames.txt`` file."""
  return f'{index},{path}\n'
