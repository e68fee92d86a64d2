"""`--mode=track`: track one object in your own video (file or folder of frames), headless.

    python main.py --config=configs/cost.py:demo --workdir=runs/demo --mode=track \\
        --video=clip.mp4 --box=120,80,24,18 --description="the red car on the left"

Writes ``<out>/boxes.txt`` (``frame,x,y,w,h,score`` per frame; frame 0 is the
given box with score 1) and ``<out>/tracked.mp4`` (mp4v; box, score, frame
index and description drawn), both frame by frame, so a run that ends early
keeps what it tracked.  ``<out>`` defaults to ``WORKDIR/track/<video name>``.
Weights as ``--mode=evaluate``.

An unreadable frame of a folder (`cost_jax.tracking.bad_frames`) gets the last
box (score 0) and a grey frame in the video, and is listed in
``<out>/bad_frames.txt`` (``frame,path``); the run goes on, or stops with
``--config.track.on_bad_frame=stop`` or past ``track.max_bad_frames``
(BadFramesError, after the outputs are closed).
"""

from __future__ import annotations

import logging
import os
import time

import cv2
import numpy as np

from cost_jax import errors
from cost_jax.tracking import bad_frames

__all__ = ['track_video', 'track_from_flags', 'parse_box', 'open_frames', 'VideoOpenError']

_BOX_COLOUR = (0, 255, 0)  # BGR
_TEXT_COLOUR = (255, 255, 255)


class VideoOpenError(errors.UserError, OSError):
  """A video file or frame folder that cannot be read; names it (a user error)."""

  def __init__(self, what, fix='give --video an existing video file or folder of frames'):
    super().__init__(what, fix)


def parse_box(text) -> np.ndarray:
  """'x,y,w,h' (commas and/or spaces) -> float64 (4,), or ValueError saying what to fix."""
  example = 'e.g. --box=120,80,24,18 (top-left corner, width, height in pixels)'
  if text is None:
    raise errors.InvalidValue('--box=x,y,w,h is missing',
                              f'give the target in the first frame, {example}')
  parts = [p for p in str(text).replace(',', ' ').split() if p]
  try:
    values = [float(p) for p in parts]
  except ValueError:
    values = []
  if len(values) != 4:
    raise errors.InvalidValue(f'--box={text!r} is not 4 numbers x,y,w,h',
                              f'give 4 numbers, {example}')
  return np.asarray(values, np.float64)


def open_frames(source: str):
  """(iterator of RGB uint8 frames, frames per second or None, name) for a video or a folder.

  An unreadable frame of a folder is yielded as its `bad_frames.FrameReadError`.
  """
  if not source:
    raise VideoOpenError('--video is missing')
  if os.path.isdir(source):
    from input_pipeline.readers.frames import list_frames
    paths = list_frames(source)
    if not paths:
      raise VideoOpenError(f'frame folder {source} holds no .jpg/.jpeg/.png/.bmp images')
    frames = (bad_frames.read_or_error(p) for p in paths)  # unreadable: its FrameReadError
    return frames, None, os.path.basename(os.path.normpath(source))
  if not os.path.isfile(source):
    raise VideoOpenError(f'video {source} does not exist')
  capture = cv2.VideoCapture(source)
  ok, first = capture.read() if capture.isOpened() else (False, None)
  if not ok:
    capture.release()
    raise VideoOpenError(f'cannot open video {source} (not a video, or a codec OpenCV lacks)',
                         'extract its frames to a folder (ffmpeg -i VIDEO DIR/%06d.jpg) and '
                         'pass the folder')
  fps = capture.get(cv2.CAP_PROP_FPS) or None
  return _video_frames(capture, first), fps, os.path.splitext(os.path.basename(source))[0]


def _video_frames(capture, first):
  try:
    frame = first
    while frame is not None:
      yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
      ok, frame = capture.read()
      frame = frame if ok else None
  finally:
    capture.release()


def annotate(frame_rgb, box, score, index: int, description: str) -> np.ndarray:
  """A BGR copy of the frame with the box, score, frame index and description drawn."""
  image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
  x, y, w, h = (int(round(v)) for v in box)
  cv2.rectangle(image, (x, y), (x + w, y + h), _BOX_COLOUR, 2)
  cv2.putText(image, f'{score:.2f}', (x, max(y - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
              _BOX_COLOUR, 1, cv2.LINE_AA)
  lines = [f'#{index}'] + ([description] if description else [])
  for k, line in enumerate(lines):
    cv2.putText(image, line, (4, 14 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4, _TEXT_COLOUR, 1,
                cv2.LINE_AA)
  return image


class _Outputs:
  """boxes.txt, bad_frames.txt and tracked.mp4 of one run, written frame by frame."""

  def __init__(self, out_dir, fps, description: str):
    self.out_dir, self.fps, self.description = out_dir, fps or 30.0, description
    self.video_path = os.path.join(out_dir, 'tracked.mp4')
    self.writer = self.size = None
    self.count = 0
    os.makedirs(out_dir, exist_ok=True)
    self.boxes = open(os.path.join(out_dir, 'boxes.txt'), 'w', encoding='utf-8')
    self.boxes.write('# frame,x,y,w,h,score\n')
    self.bad_path = os.path.join(out_dir, 'bad_frames.txt')
    if os.path.exists(self.bad_path):  # from an earlier run of this folder
      os.remove(self.bad_path)

  def add(self, frame_rgb, box, score: float, error=None) -> None:
    """Writes frame ``self.count``: its box, and the annotated frame (grey if ``error``)."""
    if self.writer is None:
      self.size = (frame_rgb.shape[1], frame_rgb.shape[0])
      self.writer = cv2.VideoWriter(self.video_path, cv2.VideoWriter_fourcc(*'mp4v'),
                                    self.fps, self.size)
      if not self.writer.isOpened():
        raise OSError(f'cannot write video {self.video_path} (OpenCV without an mp4v '
                      'encoder?)')
    if error is not None:
      frame_rgb = np.full((self.size[1], self.size[0], 3), 64, np.uint8)
      with open(self.bad_path, 'a', encoding='utf-8') as f:
        f.write(bad_frames.line(self.count, error.path))
    b = box
    self.boxes.write(f'{self.count},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{score:.4f}\n')
    self.boxes.flush()
    text = self.description if error is None else 'unreadable frame: last box carried over'
    image = annotate(frame_rgb, box, score, self.count, text)
    self.writer.write(image if image.shape[1::-1] == self.size else cv2.resize(image, self.size))
    self.count += 1

  def close(self) -> None:
    """Finalises the video and closes boxes.txt (also after an error)."""
    self.boxes.close()
    if self.writer is not None:
      self.writer.release()


def track_video(config, workdir, video, box, description: str = '', out_dir=None, *,
                tracker=None) -> dict:
  """Tracks ``box`` through ``video``; writes boxes.txt and tracked.mp4; returns a summary.

  ``tracker`` (a `Tracker`) overrides loading weights from ``workdir``.  The
  summary's 'bad_frames' lists the unreadable frames as (index, path); a run
  stopped by them raises `bad_frames.BadFramesError` (its ``summary``
  attribute holds the summary) once the outputs are complete.
  """
  bad = bad_frames.BadFrames.from_config(config, f'video {video}')
  frames, fps, name = open_frames(video)
  box = parse_box(box) if isinstance(box, str) else np.asarray(box, np.float64)
  out_dir = out_dir or os.path.join(os.fspath(workdir), 'track', name)
  if tracker is None:
    from cost_jax.tracking.tracker import Tracker, load_weights
    variables, info = load_weights(config, workdir)
    tracker = Tracker(config, variables, weights_info=info)
  first = next(frames, None)
  if first is None:
    raise VideoOpenError(f'video {video} has no frames')
  if isinstance(first, bad_frames.FrameReadError):
    raise bad_frames.FrameReadError(f'{first}: the first frame must be readable, --box refers '
                                    'to it. Fix: replace it, or remove it and give the box in '
                                    'the next frame', first.path)
  tracker.initialize(first, box, description)
  outputs = _Outputs(out_dir, fps, description)
  times, stop = [], None
  try:
    outputs.add(first, tracker.state_box, 1.0)
    for frame in frames:
      if isinstance(frame, bad_frames.FrameReadError):
        must_stop = bad.add(outputs.count, frame)
        outputs.add(None, tracker.state_box, 0.0, frame)
        if must_stop:
          stop = bad.stop_reason()
          break
        continue
      t0 = time.perf_counter()
      out_box, score = tracker.track(frame)
      times.append(time.perf_counter() - t0)
      outputs.add(frame, out_box, score)
  finally:
    outputs.close()
  summary = _summary(outputs, times, bad)
  if stop is not None:
    error = bad_frames.BadFramesError(
        f'{stop}; the {outputs.count} frames up to and including it are in {summary["boxes"]} and '
        f'{outputs.video_path}. Fix: replace the frame, or pass '
        '--config.track.on_bad_frame=skip (and a larger --config.track.max_bad_frames) to '
        'carry the last box over unreadable frames')
    error.summary = summary
    raise error
  return summary


def _summary(outputs: _Outputs, times, bad) -> dict:
  summary = {'frames': outputs.count, 'out_dir': outputs.out_dir, 'video': outputs.video_path,
             'boxes': os.path.join(outputs.out_dir, 'boxes.txt'),
             'bad_frames': list(bad.frames),
             'first_step_s': times[0] if times else None,  # includes compilation
             'fps': (len(times) - 1) / sum(times[1:]) if len(times) > 1 else None}
  logging.info('tracked %d frames of %s at %s frames/s -> %s', outputs.count, bad.name,
               'n/a' if summary['fps'] is None else f'{summary["fps"]:.1f}', outputs.out_dir)
  if bad.frames:
    logging.warning('%s', bad.summary())
  return summary


def track_from_flags(config, workdir) -> dict:
  """main.py entry: reads --video, --box, --description and --out from absl flags."""
  from absl import flags
  f = flags.FLAGS
  summary = track_video(config, workdir, f.video, parse_box(f.box), f.description, f.out or None)
  print(f'{summary["frames"]} frames; boxes: {summary["boxes"]}; video: {summary["video"]}')
  if summary['bad_frames']:
    print(f'{bad_frames.listing(summary["bad_frames"])}; all in '
          f'{os.path.join(summary["out_dir"], "bad_frames.txt")}')
  return summary
