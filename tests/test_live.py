"""Live input for `--mode=track` (cost_jax.tracking.live): a generated H.264 video served
over HTTP as a stream (MPEG-TS, as cameras and restreamers send it) that ends or stalls
mid-way, Ctrl-C, camera indices and --select_box."""

import contextlib
import http.server
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from cost_jax.tracking import live, video
from cost_jax.tracking.tracker import Tracker
from tests.test_track_video import moving_square_frames, read_outputs, read_video
from tests.test_tracker import save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES = 30
BOX = "10,30,12,12"
PACKET = 188  # MPEG-TS packet size: the served part ends on a packet boundary


def write_ts(path, frames, fps=10):
  """H.264 in MPEG-TS, every frame a keyframe (a cut loses at most the frame it cuts)."""
  # Lazy: imageio-ffmpeg is optional at runtime (cost_jax.tracking.mp4 falls
  # back without it); only the stream clip needs it.
  import imageio_ffmpeg

  h, w = frames[0].shape[:2]
  command = [
      imageio_ffmpeg.get_ffmpeg_exe(),
      "-y",
      "-loglevel",
      "error",
      "-f",
      "rawvideo",
      "-pix_fmt",
      "bgr24",
      "-s",
      f"{w}x{h}",
      "-r",
      str(fps),
      "-i",
      "-",
      "-c:v",
      "libx264",
      "-g",
      "1",
      "-pix_fmt",
      "yuv420p",
      "-f",
      "mpegts",
      str(path),
  ]
  subprocess.run(
      command, input=b"".join(f.tobytes() for f in frames), check=True
  )


@contextlib.contextmanager
def serve(
    data: bytes, fraction: float, *, stall_s: float = 0.0, seconds: float = 0.0
):
  """An HTTP URL streaming the first ``fraction`` of ``data`` over ``seconds``, then
  holding the connection open for ``stall_s`` (a stall) and closing it (the end).
  """
  cut = int(len(data) * fraction) // PACKET * PACKET
  chunk = PACKET * 8
  pause = seconds / max(1, cut // chunk)

  class Handler(http.server.BaseHTTPRequestHandler):

    def do_GET(self):  # pylint: disable=invalid-name
      self.send_response(200)
      self.send_header("Content-Type", "video/mp2t")
      self.end_headers()
      try:
        for start in range(0, cut, chunk):
          self.wfile.write(data[start : min(start + chunk, cut)])
          self.wfile.flush()
          time.sleep(pause)
        time.sleep(stall_s)
      except (BrokenPipeError, ConnectionResetError):
        pass  # the client went away

    def log_message(self, *args):
      del args

  server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
  server.daemon_threads = True
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}/live.ts"
  finally:
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
  """(path of a 30-frame H.264 MPEG-TS file, its bytes)."""
  path = tmp_path_factory.mktemp("live") / "clip.ts"
  write_ts(path, moving_square_frames(FRAMES))
  return path, path.read_bytes()


@pytest.fixture(scope="module")
def smoke_tracker(smoke_model):
  config = smoke_model[0].copy_and_resolve_references()
  config.track.stream_timeout = 2.0
  return config, Tracker(config, smoke_model[3])


@pytest.fixture(scope="module")
def from_file(smoke_tracker, clip, tmp_path_factory):
  """Boxes of tracking the whole clip opened as a file."""
  config, tracker = smoke_tracker
  out = tmp_path_factory.mktemp("file_out")
  video.track_video(
      config,
      out,
      str(clip[0]),
      BOX,
      "the red square",
      str(out),
      tracker=tracker,
  )
  return read_outputs(out)[0]


def check_stopped_stream(summary, out, from_file):
  """A stream cut after about 60% of the frames: everything that arrived is tracked,
  written and finalised; the boxes are those of the file (same decoded frames, same
  jitted step: equal bits) except the last frame, which the cut may have truncated.
  """
  count = summary["frames"]
  assert FRAMES // 3 <= count < FRAMES, count
  assert "no frame for 2 s" in summary["stopped"], summary["stopped"]
  boxes, scores = read_outputs(out)
  assert len(boxes) == len(scores) == count
  assert len(read_video(out / "tracked.mp4")) == count  # the mp4 was finalised
  np.testing.assert_array_equal(boxes[: count - 1], from_file[: count - 1])


@pytest.mark.parametrize("stall_s", [0.0, 30.0], ids=["ends", "stalls"])
def test_stream_that_stops_mid_way(
    smoke_tracker, clip, from_file, tmp_path, stall_s
):
  config, tracker = smoke_tracker
  with serve(clip[1], 0.6, stall_s=stall_s) as url:
    start = time.monotonic()
    summary = video.track_video(
        config,
        tmp_path,
        url,
        BOX,
        "the red square",
        str(tmp_path / "out"),
        tracker=tracker,
    )
    elapsed = time.monotonic() - start
  check_stopped_stream(summary, tmp_path / "out", from_file)
  # A stall ends the run after stream_timeout (2 s) for opening and for the last read,
  # not after the server's 30 s.
  assert elapsed < 20, elapsed


def test_ctrl_c_keeps_everything_tracked(smoke_model, clip, tmp_path):
  """main.py on a stream that sends 60% of the clip (a frame every 0.4 s), then stalls
  without closing; SIGINT once 5 frames are tracked. The stall keeps the interrupt
  mid-run however slowly the process starts: if it has tracked every frame sent, it is
  waiting for the next one (stream_timeout 15 s, longer than the poll below needs).
  """
  config, _, _, variables = smoke_model
  save_checkpoint(str(tmp_path / "run"), config, variables)
  out = tmp_path / "out"
  # SIGINT raises KeyboardInterrupt as in a terminal (a shell's background job ignores it).
  runner = (
      "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
      " sys.argv[0] = 'main.py'; runpy.run_path('main.py', run_name='__main__')"
  )
  with serve(clip[1], 0.6, stall_s=120.0, seconds=0.4 * FRAMES * 0.6) as url:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            runner,
            "--config=configs/cost.py:smoke",
            f'--workdir={tmp_path / "run"}',
            "--mode=track",
            f"--video={url}",
            f"--box={BOX}",
            f"--out={out}",
            "--config.track.stream_timeout=15",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
      if (out / "scores.txt").exists() and len(
          (out / "scores.txt").read_text().split()
      ) >= 5:
        break
      time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-3000:]
  assert "stopped early: interrupted (Ctrl-C)" in stdout, stdout
  boxes, scores = read_outputs(out)
  assert 5 <= len(boxes) == len(scores) < FRAMES
  assert len(read_video(out / "tracked.mp4")) == len(boxes)


def test_camera_index_and_urls():
  assert (
      live.is_stream("0")
      and live.is_stream("rtsp://cam/live")
      and live.is_stream("http://x")
  )
  assert not live.is_stream("clip.mp4") and not live.is_stream("frames/clip")
  with pytest.raises(
      FileNotFoundError, match="cannot open camera 99. Fix: check the camera"
  ):
    live.open_stream("99", 1.0)
  with socketserver.TCPServer(
      ("127.0.0.1", 0), http.server.BaseHTTPRequestHandler
  ) as s:
    port = s.server_address[1]  # a port nobody listens on once closed
  with pytest.raises(
      FileNotFoundError, match=f"cannot open stream http://127.0.0.1:{port}/x"
  ):
    live.open_stream(f"http://127.0.0.1:{port}/x", 1.0)


def test_select_box(smoke_tracker, clip, tmp_path, monkeypatch):
  config, tracker = smoke_tracker
  frame = np.zeros((72, 96, 3), np.uint8)
  monkeypatch.delenv("DISPLAY", raising=False)
  monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
  monkeypatch.setattr(sys, "platform", "linux")
  with pytest.raises(ValueError, match="needs a display.*Fix: pass --box"):
    live.select_box(frame)
  monkeypatch.setenv("DISPLAY", ":0")
  monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
  monkeypatch.setattr(
      cv2, "selectROI", _no_gui
  )  # what opencv-python-headless does
  with pytest.raises(
      ValueError, match="OpenCV cannot open a window.*opencv-python"
  ):
    live.select_box(frame)
  monkeypatch.setattr(
      cv2, "selectROI", lambda *a, **k: (0, 0, 0, 0)
  )  # Esc / c: nothing drawn
  with pytest.raises(ValueError, match="no box was drawn"):
    live.select_box(frame)
  monkeypatch.setattr(cv2, "selectROI", lambda *a, **k: (10, 30, 12, 12))
  summary = video.track_video(
      config,
      tmp_path,
      str(clip[0]),
      None,
      "",
      str(tmp_path / "out"),
      tracker=tracker,
      select_box=True,
  )
  assert summary["frames"] == FRAMES
  assert (tmp_path / "out" / "boxes.txt").read_text().splitlines()[0] == (
      "10.000,30.000,12.000,12.000"
  )


def _no_gui(*args, **kwargs):
  del args, kwargs
  raise cv2.error(
      "OpenCV(5.1.0) window.cpp:1: error: (-2:Unspecified error) The function is "
      "not implemented. Rebuild the library with GTK+ 2.x or Cocoa support"
  )
