"""`--mode=track`: track one object in your own video (file or folder of frames), headless.

    python main.py --config=configs/cost.py:demo --workdir=runs/demo --mode=track \\
        --video=clip.mp4 --box=120,80,24,18 --description="the red car on the left"

Writes ``<out>/boxes.txt`` (``frame,x,y,w,h,score`` per frame; frame 0 is the
given box with score 1) and ``<out>/tracked.mp4`` (mp4v; box, score, frame
index and description drawn).  ``<out>`` defaults to
``WORKDIR/track/<video name>``.  Weights as ``--mode=evaluate``.
"""

from __future__ import annotations

import logging
import os
import time

import cv2
import numpy as np

from cost_jax.evaluation import results_io

__all__ = ['track_video', 'track_from_flags', 'parse_box', 'open_frames', 'VideoOpenError']

_BOX_COLOUR = (0, 255, 0)  # BGR
_TEXT_COLOUR = (255, 255, 255)


class VideoOpenError(OSError):
  """A video file or frame folder that cannot be read; names it."""


def parse_box(text) -> np.ndarray:
  """'x,y,w,h' (commas and/or spaces) -> float64 (4,), or ValueError saying what to fix."""
  if text is None:
    raise ValueError('--box=x,y,w,h is required: the target in the first frame, in pixels')
  parts = [p for p in str(text).replace(',', ' ').split() if p]
  try:
    values = [float(p) for p in parts]
  except ValueError:
    values = []
  if len(values) != 4:
    raise ValueError(f'--box={text!r}: give 4 numbers x,y,w,h (top-left corner, width, height '
                     'in pixels), e.g. --box=120,80,24,18')
  return np.asarray(values, np.float64)


def open_frames(source: str):
  """(iterator of RGB uint8 frames, frames per second or None, name) for a video or a folder."""
  if not source:
    raise VideoOpenError('--video=PATH is required: a video file or a folder of frames')
  if os.path.isdir(source):
    from input_pipeline.readers.frames import list_frames
    from cost_jax.tracking.runner import read_frame
    paths = list_frames(source)
    if not paths:
      raise VideoOpenError(f'frame folder {source} holds no .jpg/.jpeg/.png/.bmp images')
    return (read_frame(p) for p in paths), None, os.path.basename(os.path.normpath(source))
  if not os.path.isfile(source):
    raise VideoOpenError(f'video {source} does not exist')
  capture = cv2.VideoCapture(source)
  ok, first = capture.read() if capture.isOpened() else (False, None)
  if not ok:
    capture.release()
    raise VideoOpenError(f'cannot open video {source} (not a video, or a codec OpenCV lacks); '
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


def _write_boxes(path, boxes, scores) -> None:
  rows = [f'{i},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{s:.4f}'
          for i, (b, s) in enumerate(zip(boxes, scores))]
  results_io.atomic_write_text(path, '# frame,x,y,w,h,score\n' + '\n'.join(rows) + '\n')


def track_video(config, workdir, video, box, description: str = '', out_dir=None, *,
                tracker=None) -> dict:
  """Tracks ``box`` through ``video``; writes boxes.txt and tracked.mp4; returns a summary.

  ``tracker`` (a `Tracker`) overrides loading weights from ``workdir``.
  """
  frames, fps, name = open_frames(video)
  box = parse_box(box) if isinstance(box, str) else np.asarray(box, np.float64)
  out_dir = out_dir or os.path.join(os.fspath(workdir), 'track', name)
  if tracker is None:
    from cost_jax.tracking.tracker import Tracker, load_weights
    variables, info = load_weights(config, workdir)
    tracker = Tracker(config, variables, weights_info=info)
  os.makedirs(out_dir, exist_ok=True)
  video_path = os.path.join(out_dir, 'tracked.mp4')
  boxes, scores, times, writer, size = [], [], [], None, None
  try:
    for index, frame in enumerate(frames):
      if index == 0:
        tracker.initialize(frame, box, description)
        out_box, score = tracker.state_box, 1.0
        size = (frame.shape[1], frame.shape[0])
        writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*'mp4v'), fps or 30.0, size)
        if not writer.isOpened():
          raise OSError(f'cannot write video {video_path} (OpenCV without an mp4v encoder?)')
      else:
        t0 = time.perf_counter()
        out_box, score = tracker.track(frame)
        times.append(time.perf_counter() - t0)
      boxes.append(out_box)
      scores.append(score)
      image = annotate(frame, out_box, score, index, description)
      writer.write(image if image.shape[1::-1] == size else cv2.resize(image, size))
  finally:
    if writer is not None:
      writer.release()
  if not boxes:
    raise VideoOpenError(f'video {video} has no frames')
  _write_boxes(os.path.join(out_dir, 'boxes.txt'), boxes, scores)
  summary = {'frames': len(boxes), 'out_dir': out_dir, 'video': video_path,
             'first_step_s': times[0] if times else None,  # includes compilation
             'fps': (len(times) - 1) / sum(times[1:]) if len(times) > 1 else None}
  logging.info('tracked %d frames of %s at %s frames/s -> %s', len(boxes), video,
               'n/a' if summary['fps'] is None else f'{summary["fps"]:.1f}', out_dir)
  return summary


def track_from_flags(config, workdir) -> dict:
  """main.py entry: reads --video, --box, --description and --out from absl flags."""
  from absl import flags
  f = flags.FLAGS
  summary = track_video(config, workdir, f.video, parse_box(f.box), f.description, f.out or None)
  print(f'{summary["frames"]} frames; boxes: {os.path.join(summary["out_dir"], "boxes.txt")}; '
        f'video: {summary["video"]}')
  return summary
