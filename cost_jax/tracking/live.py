"""Live input for ``--mode=track``: a camera or a network stream, and a box drawn by hand.

``--video=0`` opens camera 0; ``--video=rtsp://...`` (or ``http(s)://``,
``udp://``, any URL ffmpeg reads) opens a stream, both through
``cv2.VideoCapture``.  A stream has no end marker: when no frame arrives
for ``config.track.stream_timeout`` seconds (it ended, or stalled), tracking
stops there and the outputs are closed as after the last frame of a file.

``--select_box`` lets the user draw the first box with ``cv2.selectROI``;
that needs a display and an OpenCV built with a GUI (``opencv-python``, not
the ``-headless`` wheel of requirements.txt).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time

import cv2
import numpy as np

from cost_jax import errors

__all__ = ["is_stream", "open_stream", "select_box", "StreamFrames"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_RETRY_S = 0.05  # between reads of a stream that returned no frame


def is_stream(source: str) -> bool:
  """A camera index ('0', '1', ...) or a URL (not a local file or folder)."""
  source = str(source)
  return source.isdigit() or bool(_URL.match(source))


def _describe(source: str) -> str:
  return f"camera {source}" if source.isdigit() else f"stream {source}"


def _capture(source: str, timeout_s: float):
  """cv2.VideoCapture of a camera index or URL (open/read timeouts for URLs)."""
  if source.isdigit():
    return cv2.VideoCapture(int(source))
  ms = int(timeout_s * 1000)
  return cv2.VideoCapture(
      source,
      cv2.CAP_FFMPEG,
      [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms],
  )


class StreamFrames:
  """RGB frames of a live capture; ``end_reason`` says why they stopped."""

  def __init__(self, capture, first_bgr, what: str, timeout_s: float):
    self.capture, self.first, self.what, self.timeout_s = (
        capture,
        first_bgr,
        what,
        timeout_s,
    )
    self.end_reason = None
    self.count = 0

  def read(self):
    """The next BGR frame, retried for ``timeout_s``; None when none came."""
    start = time.monotonic()
    while True:
      ok, frame = self.capture.read()
      if ok and frame is not None:
        return frame
      if time.monotonic() - start >= self.timeout_s:
        return None
      time.sleep(_RETRY_S)

  def __iter__(self):
    try:
      frame, self.first = self.first, None
      while frame is not None:
        self.count += 1
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        frame = self.read()
      self.end_reason = (
          f"{self.what}: no frame for {self.timeout_s:g} s after frame "
          f"{self.count - 1} (the stream ended or stalled)"
      )
      logging.warning("%s; tracking stops there", self.end_reason)
    finally:
      self.capture.release()


def open_stream(source: str, timeout_s: float):
  """(StreamFrames, frames per second or None, name) of a camera index or URL."""
  what = _describe(source)
  capture = _capture(source, timeout_s)
  if not capture.isOpened():
    capture.release()
    check = (
        "the camera index (0 is the first camera)"
        if source.isdigit()
        else "the URL (rtsp://, http://...)"
    )
    raise errors.NotFound(
        f"cannot open {what}", f"check {check} and that it streams now"
    )
  stream = StreamFrames(capture, None, what, timeout_s)
  stream.first = stream.read()
  if stream.first is None:
    capture.release()
    raise errors.NotFound(
        f"{what} sent no frame within {timeout_s:g} s",
        "check that it streams, or raise --config.track.stream_timeout",
    )
  fps = capture.get(cv2.CAP_PROP_FPS)
  fps = (
      fps if 0 < fps <= 240 else None
  )  # streams often report 0 or a clock rate
  name = f"camera{source}" if source.isdigit() else _stream_name(source)
  return stream, fps, name


def _stream_name(url: str) -> str:
  """A folder name for a URL: its last path part without extension, else its host."""
  rest = _URL.sub("", url).split("?")[0].rstrip("/")
  part = rest.rsplit("/", 1)[-1] if "/" in rest else rest
  name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(part)[0] or part)
  return name.strip("._") or "stream"


def _has_display() -> bool:
  if not sys.platform.startswith("linux"):
    return True  # Windows and macOS always have a window system
  return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def select_box(frame_rgb: np.ndarray) -> np.ndarray:
  """The x, y, w, h box the user draws on the first frame (cv2.selectROI)."""
  fix = "pass --box=x,y,w,h (the target in the first frame, in pixels) instead"
  if not _has_display():
    raise errors.InvalidValue(
        "--select_box needs a display and none is set (no DISPLAY)", fix
    )
  title = "COST: drag a box around the target, then press ENTER (c cancels)"
  try:
    box = cv2.selectROI(
        title,
        cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR),
        showCrosshair=True,
        fromCenter=False,
    )
    cv2.destroyWindow(title)
  except cv2.error:
    raise errors.InvalidValue(
        "--select_box: this OpenCV cannot open a window (built without a GUI)",
        f"install an OpenCV with a GUI (opencv-python instead of opencv-python-headless), or "
        f"{fix}",
    ) from None
  box = np.asarray(box, np.float64)
  if box.shape != (4,) or box[2] <= 0 or box[3] <= 0:
    raise errors.InvalidValue(
        "--select_box: no box was drawn",
        f"drag a box around the target and press ENTER, or {fix}",
    )
  return box
