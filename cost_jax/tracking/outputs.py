"""The files of one `--mode=track` run, written frame by frame.

``boxes.txt``, ``scores.txt``, ``bad_frames.txt`` and ``tracked.mp4`` get
each frame as it is tracked, so a run that ends early keeps what it tracked;
a Ctrl-C waits until the frame is in every file. A URL out folder (gs://...,
etils.epath) gets them when the run ends: until then they are written in a
local temporary folder (ffmpeg writes a local file, and a bucket object
cannot grow frame by frame).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading

import cv2
from etils import epath
import numpy as np

from cost_jax.evaluation import results_io
from cost_jax.tracking import bad_frames, mp4, overlay

__all__ = ['Outputs']


@contextlib.contextmanager
def _interrupt_after():
  """Holds a Ctrl-C (SIGINT) back until the block is done, then raises KeyboardInterrupt."""
  if threading.current_thread() is not threading.main_thread():
    yield  # signal handlers belong to the main thread
    return
  received = []
  previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)
  if received and previous is not signal.SIG_IGN:
    raise KeyboardInterrupt


class Outputs:
  """boxes.txt, scores.txt, bad_frames.txt and tracked.mp4 of one run, frame by frame.

  A URL ``out_dir`` gets them on `close`: until then they are written in a
  local temporary folder.
  """

  def __init__(self, out_dir, fps, description: str, codec: str = mp4.H264):
    self.out_dir, self.fps, self.description = out_dir, fps or 30.0, description
    self.codec = codec
    self.video_path = os.path.join(out_dir, 'tracked.mp4')
    self.writer = self.size = None
    self.count = 0
    stale = epath.Path(out_dir) / 'bad_frames.txt'
    if stale.exists():  # from an earlier run of this folder
      stale.unlink()
    epath.Path(out_dir).mkdir(parents=True, exist_ok=True)
    local = results_io.is_local(out_dir)
    self.staging = None if local else tempfile.mkdtemp(prefix='cost_track_')
    self.folder = self.staging or out_dir
    self.boxes = open(
        os.path.join(self.folder, 'boxes.txt'), 'w', encoding='utf-8'
    )
    self.scores = open(
        os.path.join(self.folder, 'scores.txt'), 'w', encoding='utf-8'
    )
    self.bad_path = os.path.join(self.folder, 'bad_frames.txt')

  def add(
      self, frame_rgb, box, score: float, error=None, candidates=None
  ) -> None:
    """Writes frame ``self.count``: its box, score and annotated frame (grey if ``error``).

    A Ctrl-C meanwhile waits until the frame is in every file.
    """
    if self.writer is None:
      self.size = (frame_rgb.shape[1], frame_rgb.shape[0])
      self.writer = mp4.open_writer(
          os.path.join(self.folder, 'tracked.mp4'),
          self.fps,
          self.size,
          self.codec,
      )
    if error is not None:
      frame_rgb = np.full((self.size[1], self.size[0], 3), 64, np.uint8)
    text = (
        self.description
        if error is None
        else 'unreadable frame: last box carried over'
    )
    image = overlay.annotate(
        frame_rgb, box, score, self.count, text, candidates
    )
    if image.shape[1::-1] != self.size:
      image = cv2.resize(image, self.size)
    with _interrupt_after():
      if error is not None:
        with open(self.bad_path, 'a', encoding='utf-8') as f:
          f.write(bad_frames.line(self.count, error.path))
      self.writer.write(image)
      self.boxes.write(results_io.format_boxes(np.asarray(box)[None]))
      self.scores.write(f'{score:.4f}\n')
      self.boxes.flush()
      self.scores.flush()
      self.count += 1

  def close(self) -> None:
    """Finalises the video and closes the text files (also after an error);
    copies them to a URL ``out_dir`` (kept locally if that fails)."""
    self.boxes.close()
    self.scores.close()
    if self.writer is not None:
      self.writer.close()
    if self.staging is None:
      return
    try:
      for name in sorted(os.listdir(self.staging)):
        with open(os.path.join(self.staging, name), 'rb') as src:
          with (epath.Path(self.out_dir) / name).open('wb') as dst:
            shutil.copyfileobj(src, dst)
    except BaseException:
      logging.error(
          'could not copy the outputs to %s; they are in %s',
          self.out_dir,
          self.staging,
      )
      raise
    shutil.rmtree(self.staging)
