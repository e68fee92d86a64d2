"""``tracked.mp4`` that plays in browsers, notebooks and on GitHub: H.264.

`open_writer` encodes H.264 (yuv420p, ``+faststart``) with the ffmpeg that
the ``imageio-ffmpeg`` package ships.  The encoder runs in its own session,
so Ctrl-C reaches only Python, which then closes the file properly; if
Python dies, the encoder sees the end of its input and still finishes the
file.  Without ``imageio-ffmpeg`` (or if its encoder fails to start) the
video is written with OpenCV's ``mp4v`` encoder and a warning says that most
players will not play it.
"""

from __future__ import annotations

import fractions
import functools
import logging
import subprocess

import cv2
import numpy as np

__all__ = ["open_writer", "H264", "MP4V"]

H264, MP4V = "h264", "mp4v"
_H264_ENCODERS = (
    "libx264",
    "libopenh264",
)  # software encoders, in order of preference


@functools.lru_cache(maxsize=1)
def _ffmpeg_h264():
  """(ffmpeg executable of imageio-ffmpeg, its H.264 encoder); ImportError or RuntimeError."""
  import imageio_ffmpeg  # pylint: disable=import-outside-toplevel

  exe = imageio_ffmpeg.get_ffmpeg_exe()
  listing = subprocess.run(
      [exe, "-hide_banner", "-encoders"],
      capture_output=True,
      text=True,
      check=True,
      timeout=60,
  ).stdout
  names = {
      line.split()[1] for line in listing.splitlines() if len(line.split()) > 1
  }
  for encoder in _H264_ENCODERS:
    if encoder in names:
      return exe, encoder
  raise RuntimeError(
      f'{exe} has none of the H.264 encoders {", ".join(_H264_ENCODERS)}'
  )


class _FfmpegWriter:
  """H.264 (yuv420p) through imageio-ffmpeg's ffmpeg, raw BGR frames piped in.

  ffmpeg runs in its own session: Ctrl-C in the terminal reaches only Python,
  which closes the pipe; ffmpeg then finishes the file (also if Python dies).
  """

  codec = H264

  def __init__(self, path: str, fps: float, size):
    exe, encoder = _ffmpeg_h264()
    fps = fractions.Fraction(float(fps)).limit_denominator(1001)
    command = [
        exe,
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{size[0]}x{size[1]}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-an",
        "-c:v",
        encoder,
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        path,
    ]
    self.process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )

  def write(self, image: np.ndarray) -> None:
    try:
      self.process.stdin.write(np.ascontiguousarray(image).tobytes())
    except BrokenPipeError:
      raise OSError(f"ffmpeg stopped: {self._stderr()}") from None

  def _stderr(self) -> str:
    self.process.wait(timeout=60)
    return self.process.stderr.read().decode(errors="replace").strip()

  def close(self) -> None:
    try:
      self.process.stdin.close()
    except BrokenPipeError:
      pass
    if self.process.wait() != 0:
      logging.warning("ffmpeg could not finish the video: %s", self._stderr())
    self.process.stderr.close()


class _OpenCvWriter:
  """OpenCV's mp4v (MPEG-4 part 2): the fallback."""

  codec = MP4V

  def __init__(self, path: str, fps: float, size):
    self._writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(size)
    )
    if not self._writer.isOpened():
      raise OSError(
          f"cannot write video {path} (OpenCV without an mp4v encoder?)"
      )

  def write(self, image: np.ndarray) -> None:
    self._writer.write(image)

  def close(self) -> None:
    self._writer.release()


class _EvenSize:
  """Pads frames to even width/height (H.264 4:2:0 needs them) with black."""

  def __init__(self, writer, size):
    self.writer, self.size, self.codec = writer, tuple(size), writer.codec

  def write(self, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    if (w, h) != self.size:
      image = cv2.copyMakeBorder(
          image,
          0,
          self.size[1] - h,
          0,
          self.size[0] - w,
          cv2.BORDER_CONSTANT,
          value=0,
      )
    self.writer.write(image)

  def close(self) -> None:
    self.writer.close()


def open_writer(path: str, fps: float, size, codec: str = H264):
  """A frame-by-frame BGR video writer (``write(image)``, ``close()``, ``codec``).

  ``path`` is a local file, which the encoder writes as frames come (for a
  bucket, `cost_jax.tracking.video` writes locally and copies at the end).

  ``size`` is (width, height) of the frames given; H.264 pads odd sides by
  one black pixel.  ``codec='h264'`` falls back to ``mp4v`` with a warning.
  """
  width, height = (int(v) for v in size)
  if codec == H264:
    even = (width + width % 2, height + height % 2)
    try:
      return _EvenSize(_FfmpegWriter(path, fps, even), even)
    except (
        ImportError,
        OSError,
        RuntimeError,
        subprocess.SubprocessError,
    ) as e:
      logging.warning(
          "no H.264 encoder (%s: %s): writing %s with mp4v, which browsers, "
          "notebooks and GitHub do not play. Fix: pip install imageio-ffmpeg",
          type(e).__name__,
          e,
          path,
      )
  elif codec != MP4V:
    raise ValueError(f"video codec {codec!r}: use {H264} or {MP4V}")
  return _OpenCvWriter(path, fps, (width, height))
