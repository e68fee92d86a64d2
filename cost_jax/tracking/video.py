"""`--mode=track`: track one object in your own video, a camera or a stream, headless.

    python main.py --config=configs/cost.py:demo --workdir=runs/demo --mode=track \\
        --video=clip.mp4 --box=120,80,24,18 --description="the red car on the left"

``--video`` is a video file, a folder of frames, a camera index (``0``) or a
stream URL (``rtsp://...``, ``http://...``; `cost_jax.tracking.live`).
Writes ``<out>/boxes.txt`` (``x,y,w,h`` per frame, the toolkits' layout;
frame 0 is the given box), ``<out>/scores.txt`` (the tracker's probability
per frame, 1 for frame 0) and ``<out>/tracked.mp4`` (H.264,
`cost_jax.tracking.mp4`; box, score, frame index and description drawn; with
``show_scores`` also the candidates, `cost_jax.tracking.overlay`), all frame
by frame, so a run that ends early (Ctrl-C, a stream that stops) keeps what
it tracked.  ``<out>`` defaults to ``WORKDIR/track/<video name>``.  Weights
as ``--mode=evaluate``.  ``<out>`` (or WORKDIR) may be a URL (``gs://...``,
etils.epath): the files are then written in a local temporary folder and
copied there when the run ends (ffmpeg writes a local file, and a bucket
object cannot grow frame by frame).

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
from cost_jax.tracking import bad_frames, live
from cost_jax.tracking import outputs as outputs_lib
from cost_jax.tracking.tracker import Tracker, load_weights
from input_pipeline.readers.frames import list_frames

__all__ = [
    'track_video',
    'track_and_report',
    'parse_box',
    'open_frames',
    'VideoOpenError',
]


class VideoOpenError(errors.UserError, OSError):
  """A video file or frame folder that cannot be read; names it (a user error)."""

  def __init__(
      self, what, fix='give --video an existing video file or folder of frames'
  ):
    super().__init__(what, fix)


def parse_box(text) -> np.ndarray:
  """'x,y,w,h' (commas and/or spaces) -> float64 (4,), or ValueError saying what to fix."""
  example = 'e.g. --box=120,80,24,18 (top-left corner, width, height in pixels)'
  if text is None:
    raise errors.InvalidValue(
        '--box=x,y,w,h is missing',
        f'give the target in the first frame, {example}',
    )
  parts = [p for p in str(text).replace(',', ' ').split() if p]
  try:
    values = [float(p) for p in parts]
  except ValueError:
    values = []
  if len(values) != 4:
    raise errors.InvalidValue(
        f'--box={text!r} is not 4 numbers x,y,w,h', f'give 4 numbers, {example}'
    )
  return np.asarray(values, np.float64)


def open_frames(source: str, stream_timeout: float = 10.0):
  """(iterable of RGB uint8 frames, frames per second or None, name) for a video file, a
  folder of frames, a camera index or a stream URL (`live.open_stream`).

  An unreadable frame of a folder is yielded as its `bad_frames.FrameReadError`.
  """
  if not source:
    raise VideoOpenError('--video is missing')
  source = str(source)
  if live.is_stream(source) and not os.path.exists(source):
    return live.open_stream(source, stream_timeout)
  if os.path.isdir(source):

    paths = list_frames(source)
    if not paths:
      raise VideoOpenError(
          f'frame folder {source} holds no .jpg/.jpeg/.png/.bmp images'
      )
    frames = (
        bad_frames.read_or_error(p) for p in paths
    )  # unreadable: its FrameReadError
    return frames, None, os.path.basename(os.path.normpath(source))
  if not os.path.isfile(source):
    raise VideoOpenError(f'video {source} does not exist')
  capture = cv2.VideoCapture(source)
  ok, first = capture.read() if capture.isOpened() else (False, None)
  if not ok:
    capture.release()
    raise VideoOpenError(
        f'cannot open video {source} (not a video, or a codec OpenCV lacks)',
        'extract its frames to a folder (ffmpeg -i VIDEO DIR/%06d.jpg) and '
        'pass the folder',
    )
  fps = capture.get(cv2.CAP_PROP_FPS) or None
  return (
      _video_frames(capture, first),
      fps,
      os.path.splitext(os.path.basename(source))[0],
  )


def _video_frames(capture, first):
  try:
    frame = first
    while frame is not None:
      yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
      ok, frame = capture.read()
      frame = frame if ok else None
  finally:
    capture.release()


def track_video(
    config,
    workdir,
    video,
    box,
    description: str = '',
    out_dir=None,
    *,
    tracker=None,
    show_scores: bool = False,
    select_box: bool = False,
) -> dict:
  """Tracks ``box`` through ``video``; writes boxes.txt, scores.txt and tracked.mp4.

  ``tracker`` (a `Tracker`) overrides loading weights from ``workdir``;
  ``show_scores`` draws the candidates (`overlay`); ``select_box`` asks the
  user to draw ``box`` on the first frame (`live.select_box`).  Returns a
  summary; its 'stopped' says why a run ended early (Ctrl-C, a stream with
  no frame for ``config.track.stream_timeout`` s), 'bad_frames' lists the
  unreadable frames as (index, path).  A run stopped by those raises
  `bad_frames.BadFramesError` (its ``summary`` attribute holds the summary)
  once the outputs are complete.
  """
  bad = bad_frames.BadFrames.from_config(config, f'video {video}')
  frames, fps, name = open_frames(
      video, float(config.track.get('stream_timeout', 10.0))
  )
  if not select_box:
    box = (
        parse_box(box)
        if isinstance(box, str) or box is None
        else np.asarray(box, np.float64)
    )
  out_dir = out_dir or os.path.join(os.fspath(workdir), 'track', name)
  if tracker is None:

    variables, info = load_weights(config, workdir)
    tracker = Tracker(config, variables, weights_info=info)
  source, frames = frames, iter(frames)
  first = _first_frame(frames, video)
  if select_box:
    box = live.select_box(first)
  tracker.initialize(first, box, description)
  outputs = outputs_lib.Outputs(out_dir, fps, description)
  try:
    outputs.add(first, tracker.state_box, 1.0)
    times, stop, interrupted = _track_frames(
        tracker, frames, outputs, bad, show_scores
    )
  finally:
    outputs.close()
  summary = _summary(outputs, times, bad)
  summary['stopped'] = (
      'interrupted (Ctrl-C)'
      if interrupted
      else getattr(source, 'end_reason', None)
  )
  if stop is not None:
    error = bad_frames.BadFramesError(
        f'{stop}; the {outputs.count} frames up to and including it are in {summary["boxes"]} and '
        f'{outputs.video_path}. Fix: replace the frame, or pass '
        '--config.track.on_bad_frame=skip (and a larger --config.track.max_bad_frames) to '
        'carry the last box over unreadable frames'
    )
    error.summary = summary
    raise error
  return summary


def _first_frame(frames, video):
  """The first frame, which must be readable (the box refers to it)."""
  first = next(frames, None)
  if first is None:
    raise VideoOpenError(f'video {video} has no frames')
  if isinstance(first, bad_frames.FrameReadError):
    raise bad_frames.FrameReadError(
        f'{first}: the first frame must be readable, --box refers '
        'to it. Fix: replace it, or remove it and give the box in '
        'the next frame',
        first.path,
    )
  return first


def _track_frames(
    tracker, frames, outputs: outputs_lib.Outputs, bad, show_scores: bool
):
  """Tracks and writes every further frame -> (step times, bad-frame stop reason or None,
  whether Ctrl-C stopped it); what was written before a Ctrl-C stays."""
  times, stop = [], None
  try:
    for frame in frames:
      if isinstance(frame, bad_frames.FrameReadError):
        must_stop = bad.add(outputs.count, frame)
        outputs.add(None, tracker.state_box, 0.0, frame)
        if must_stop:
          stop = bad.stop_reason()
          break
        continue
      t0 = time.perf_counter()
      if show_scores:
        out_box, score, candidates = tracker.track_with_scores(frame)
      else:
        (out_box, score), candidates = tracker.track(frame), None
      times.append(time.perf_counter() - t0)
      outputs.add(frame, out_box, score, candidates=candidates)
  except KeyboardInterrupt:
    logging.warning(
        'interrupted (Ctrl-C) after %d frames; the outputs keep them',
        outputs.count,
    )
    return times, stop, True
  return times, stop, False


def _summary(outputs: outputs_lib.Outputs, times, bad) -> dict:
  summary = {
      'frames': outputs.count,
      'out_dir': outputs.out_dir,
      'video': outputs.video_path,
      'boxes': os.path.join(outputs.out_dir, 'boxes.txt'),
      'scores': os.path.join(outputs.out_dir, 'scores.txt'),
      'codec': getattr(outputs.writer, 'codec', None),
      'bad_frames': list(bad.frames),
      'first_step_s': times[0] if times else None,  # includes compilation
      'fps': (len(times) - 1) / sum(times[1:]) if len(times) > 1 else None,
  }
  logging.info(
      'tracked %d frames of %s at %s frames/s -> %s',
      outputs.count,
      bad.name,
      'n/a' if summary['fps'] is None else f'{summary["fps"]:.1f}',
      outputs.out_dir,
  )
  if bad.frames:
    logging.warning('%s', bad.summary())
  return summary


def track_and_report(
    config,
    workdir,
    video: str,
    box: str | None,
    description: str = '',
    out_dir: str | None = None,
    show_scores: bool = False,
    select_box: bool = False,
) -> dict:
  """`--mode=track` (main.py's flags as arguments): `track_video` on a box
  given as 'x,y,w,h' text (or drawn, `select_box`), then prints where the
  outputs are."""
  select = bool(select_box) and not box
  summary = track_video(
      config,
      workdir,
      video,
      None if select else parse_box(box),
      description,
      out_dir or None,
      show_scores=show_scores,
      select_box=select,
  )
  print(
      f'{summary["frames"]} frames; boxes: {summary["boxes"]}; scores: {summary["scores"]}; '
      f'video: {summary["video"]}'
  )
  if summary['stopped']:
    print(
        f'stopped early: {summary["stopped"]}; everything tracked until then is kept'
    )
  if summary['bad_frames']:
    print(
        f'{bad_frames.listing(summary["bad_frames"])}; all in '
        f'{os.path.join(summary["out_dir"], "bad_frames.txt")}'
    )
  return summary
