"""`--mode=track` on one's own video (cost_jax.tracking.video), headless: boxes.txt and
scores.txt the toolkits read, an H.264 tracked.mp4, the --show_scores overlay.
"""

import logging
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cost_jax.evaluation import results_io
from cost_jax.tracking import mp4, overlay, video
from cost_jax.tracking.tracker import Tracker


def moving_square_frames(n=10, size=(96, 72)):
  """BGR frames of a red square moving right on grey."""
  frames = []
  for t in range(n):
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    frame[30:42, 10 + 3 * t : 22 + 3 * t] = (0, 0, 230)
    frames.append(frame)
  return frames


def write_mp4(path, frames, fps=10.0):
  h, w = frames[0].shape[:2]
  writer = cv2.VideoWriter(
      str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h)
  )
  assert writer.isOpened()
  for f in frames:
    writer.write(f)
  writer.release()


@pytest.fixture(scope='module')
def smoke_tracker(smoke_model):
  config, _, _, variables = smoke_model
  return config, Tracker(config, variables)


def read_video(path):
  capture = cv2.VideoCapture(str(path))
  assert capture.isOpened(), path
  frames = []
  ok, frame = capture.read()
  while ok:
    frames.append(frame)
    ok, frame = capture.read()
  capture.release()
  return frames


def fourcc(path) -> str:
  """The codec tag OpenCV reads from a video file ('h264', 'avc1', 'mp4v', ...)."""
  capture = cv2.VideoCapture(str(path))
  code = int(capture.get(cv2.CAP_PROP_FOURCC))
  capture.release()
  return code.to_bytes(4, 'little').decode('ascii', 'replace').lower()


def ffmpeg_codec(path) -> str:
  """The video codec that ffmpeg reports (imageio-ffmpeg's; it ships no ffprobe)."""
  # Lazy: imageio-ffmpeg is optional at runtime (cost_jax.tracking.mp4 falls
  # back without it); the other helpers here, which other test files import,
  # do not need it.
  import imageio_ffmpeg

  out = subprocess.run(
      [imageio_ffmpeg.get_ffmpeg_exe(), '-hide_banner', '-i', str(path)],
      capture_output=True,
      text=True,
      check=False,
  ).stderr
  line = next(line for line in out.splitlines() if 'Video:' in line)
  return line.split('Video:')[1].split()[0].strip(',')


def read_outputs(out):
  """(boxes (N, 4) of boxes.txt, scores (N,) of scores.txt) of a --mode=track folder."""
  scores = np.loadtxt(out / 'scores.txt', ndmin=1)
  return results_io.read_boxes(out / 'boxes.txt', len(scores)), scores


@pytest.mark.parametrize('source', ['mp4', 'folder'])
def test_track_video_writes_boxes_and_mp4(smoke_tracker, tmp_path, source):
  config, tracker = smoke_tracker
  frames = moving_square_frames()
  if source == 'mp4':
    src = tmp_path / 'clip.mp4'
    write_mp4(src, frames)
  else:
    src = tmp_path / 'frames'
    src.mkdir()
    for i, f in enumerate(frames):
      cv2.imwrite(str(src / f'{i + 1:04d}.png'), f)
  out = tmp_path / 'out'
  summary = video.track_video(
      config,
      tmp_path,
      str(src),
      '10,30,12,12',
      'the red square',
      str(out),
      tracker=tracker,
  )
  assert summary['frames'] == len(frames)
  # boxes.txt: plain x,y,w,h lines, as the toolkits and cost_jax.analyze read them.
  assert (out / 'boxes.txt').read_text().splitlines()[
      0
  ] == '10.000,30.000,12.000,12.000'
  boxes, scores = read_outputs(out)
  assert boxes.shape == (len(frames), 4) and scores[0] == 1
  assert np.all((scores >= 0) & (scores <= 1))
  written = read_video(out / 'tracked.mp4')
  assert len(written) == len(frames) and written[0].shape == frames[0].shape


def test_default_out_dir_and_flags(smoke_tracker, tmp_path):
  config, tracker = smoke_tracker
  write_mp4(tmp_path / 'walk.mp4', moving_square_frames(3))
  summary = video.track_video(
      config,
      tmp_path / 'wd',
      str(tmp_path / 'walk.mp4'),
      [10, 30, 12, 12],
      '',
      tracker=tracker,
  )
  assert summary['out_dir'] == str(tmp_path / 'wd' / 'track' / 'walk')
  for name in ('boxes.txt', 'scores.txt', 'tracked.mp4'):
    assert (tmp_path / 'wd' / 'track' / 'walk' / name).exists()
  assert summary['stopped'] is None


def test_tracked_mp4_is_h264(smoke_tracker, tmp_path):
  config, tracker = smoke_tracker
  (
      tmp_path / 'odd'
  ).mkdir()  # frames with odd sides (PNG: OpenCV's mp4v would crop them)
  for i, frame in enumerate(moving_square_frames(4, size=(97, 71))):
    cv2.imwrite(str(tmp_path / 'odd' / f'{i:04d}.png'), frame)
  summary = video.track_video(
      config,
      tmp_path,
      str(tmp_path / 'odd'),
      '10,30,12,12',
      '',
      str(tmp_path / 'out'),
      tracker=tracker,
  )
  path = tmp_path / 'out' / 'tracked.mp4'
  assert summary['codec'] == 'h264' and ffmpeg_codec(path) == 'h264'
  assert fourcc(path) in ('avc1', 'h264')
  written = read_video(path)  # padded to even sides by one black column and row
  assert len(written) == 4 and written[0].shape == (72, 98, 3)


def test_without_an_h264_encoder_falls_back_to_mp4v(
    smoke_tracker, tmp_path, monkeypatch, caplog
):
  config, tracker = smoke_tracker
  monkeypatch.setitem(sys.modules, 'imageio_ffmpeg', None)  # its import fails
  mp4._ffmpeg_h264.cache_clear()  # pylint: disable=protected-access
  write_mp4(tmp_path / 'clip.mp4', moving_square_frames(3))
  with caplog.at_level(logging.WARNING):
    summary = video.track_video(
        config,
        tmp_path,
        str(tmp_path / 'clip.mp4'),
        '10,30,12,12',
        '',
        str(tmp_path / 'out'),
        tracker=tracker,
    )
  monkeypatch.undo()
  mp4._ffmpeg_h264.cache_clear()  # pylint: disable=protected-access
  path = tmp_path / 'out' / 'tracked.mp4'
  assert (
      summary['codec'] == 'mp4v' and ffmpeg_codec(path) == 'mpeg4'
  )  # MPEG-4 part 2
  assert fourcc(path) in ('mp4v', 'fmp4')
  assert (
      'no H.264 encoder' in caplog.text
      and 'pip install imageio-ffmpeg' in caplog.text
  )
  assert len(read_video(tmp_path / 'out' / 'tracked.mp4')) == 3


def test_score_overlay_differs_between_descriptions(smoke_tracker):
  """Same frames, two descriptions: the windowed scores and their drawing differ.

  The first tracked frame's search crop is the same for both (same box), and the
  jitted step gives the same bits for the same inputs, so only the text can make
  them differ: any difference is the language branch's.
  """
  config, tracker = smoke_tracker
  del config
  frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in moving_square_frames(2)]
  drawn, candidates = [], []
  for description in ('the red square', 'a small blue circle at the bottom'):
    tracker.initialize(frames[0], (10, 30, 12, 12), description)
    box, score, found = tracker.track_with_scores(frames[1])
    tracker.initialize(frames[0], (10, 30, 12, 12), description)
    plain_box, plain_score = tracker.track(
        frames[1]
    )  # the step without the map
    np.testing.assert_array_equal(box, plain_box)
    assert score == plain_score
    g = tracker.grid_side
    assert found['scores'].shape == (g * g,) and found['centres'].shape == (
        g * g,
        2,
    )
    assert found['chosen'] == int(np.argmax(found['scores']))
    candidates.append(found)
    drawn.append(overlay.annotate(frames[1], box, score, 1, '', found))
  assert not np.array_equal(candidates[0]['scores'], candidates[1]['scores'])
  assert np.any(drawn[0] != drawn[1])
  blank = overlay.draw_candidates(
      np.zeros((72, 96, 3), np.uint8), candidates[0]
  )
  assert blank.any()  # dots, the searched square and the map were drawn


def test_show_scores_video(smoke_tracker, tmp_path):
  config, tracker = smoke_tracker
  write_mp4(tmp_path / 'clip.mp4', moving_square_frames(4))
  out = {}
  for show in (False, True):
    out[show] = tmp_path / f'out_{show}'
    video.track_video(
        config,
        tmp_path,
        str(tmp_path / 'clip.mp4'),
        '10,30,12,12',
        'red',
        str(out[show]),
        tracker=tracker,
        show_scores=show,
    )
  # The overlay changes the pictures, not the tracking.
  np.testing.assert_array_equal(
      read_outputs(out[True])[0], read_outputs(out[False])[0]
  )
  shown = read_video(out[True] / 'tracked.mp4')
  plain = read_video(out[False] / 'tracked.mp4')
  assert len(shown) == 4 and fourcc(out[True] / 'tracked.mp4') in (
      'avc1',
      'h264',
  )
  # Frame 1 gets the 11 x 11 map in its top-right corner (1 px cells: 72 // 4 = 18 px
  # for 11 cells; the searched square's centre y = 36 is not in the top half) over flat
  # grey (90): JET colours differ from it by far more than H.264's error on flat grey.
  corner = (slice(1, 12), slice(84, 95))
  assert np.abs(shown[1][corner].astype(int) - plain[1][corner]).mean() > 20


def test_bad_video_inputs(smoke_tracker, tmp_path):
  config, tracker = smoke_tracker
  bad = tmp_path / 'bad.mp4'
  bad.write_text('not a video')
  with pytest.raises(video.VideoOpenError, match='bad.mp4'):
    video.track_video(
        config, tmp_path, str(bad), '1,1,5,5', '', tracker=tracker
    )
  with pytest.raises(video.VideoOpenError, match='missing.mp4 does not exist'):
    video.track_video(
        config,
        tmp_path,
        str(tmp_path / 'missing.mp4'),
        '1,1,5,5',
        '',
        tracker=tracker,
    )
  (tmp_path / 'empty').mkdir()
  with pytest.raises(video.VideoOpenError, match='empty holds no'):
    video.track_video(
        config,
        tmp_path,
        str(tmp_path / 'empty'),
        '1,1,5,5',
        '',
        tracker=tracker,
    )
  write_mp4(tmp_path / 'ok.mp4', moving_square_frames(2))
  with pytest.raises(ValueError, match='outside'):
    video.track_video(
        config,
        tmp_path,
        str(tmp_path / 'ok.mp4'),
        '500,1,5,5',
        '',
        tracker=tracker,
    )
  for text in ('1,2,3', 'a,b,c,d', None):
    with pytest.raises(ValueError, match='x,y,w,h'):
      video.parse_box(text)
