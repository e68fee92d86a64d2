"""`--mode=track` on one's own video (cost_jax.tracking.video), headless."""

import cv2
import numpy as np
import pytest

from cost_jax.tracking import video
from cost_jax.tracking.tracker import Tracker


def moving_square_frames(n=10, size=(96, 72)):
  """BGR frames of a red square moving right on grey."""
  frames = []
  for t in range(n):
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    frame[30:42, 10 + 3 * t:22 + 3 * t] = (0, 0, 230)
    frames.append(frame)
  return frames


def write_mp4(path, frames, fps=10.0):
  h, w = frames[0].shape[:2]
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
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
  summary = video.track_video(config, tmp_path, str(src), '10,30,12,12', 'the red square',
                              str(out), tracker=tracker)
  assert summary['frames'] == len(frames)
  lines = (out / 'boxes.txt').read_text().splitlines()
  assert lines[0] == '# frame,x,y,w,h,score' and len(lines) == len(frames) + 1
  rows = np.array([[float(v) for v in line.split(',')] for line in lines[1:]])
  np.testing.assert_array_equal(rows[:, 0], np.arange(len(frames)))
  np.testing.assert_allclose(rows[0, 1:5], [10, 30, 12, 12])
  assert np.all((rows[:, 5] >= 0) & (rows[:, 5] <= 1))
  written = read_video(out / 'tracked.mp4')
  assert len(written) == len(frames) and written[0].shape == frames[0].shape


def test_default_out_dir_and_flags(smoke_tracker, tmp_path):
  config, tracker = smoke_tracker
  write_mp4(tmp_path / 'walk.mp4', moving_square_frames(3))
  summary = video.track_video(config, tmp_path / 'wd', str(tmp_path / 'walk.mp4'),
                              [10, 30, 12, 12], '', tracker=tracker)
  assert summary['out_dir'] == str(tmp_path / 'wd' / 'track' / 'walk')
  assert (tmp_path / 'wd' / 'track' / 'walk' / 'boxes.txt').exists()


def test_bad_video_inputs(smoke_tracker, tmp_path):
  config, tracker = smoke_tracker
  bad = tmp_path / 'bad.mp4'
  bad.write_text('not a video')
  with pytest.raises(video.VideoOpenError, match='bad.mp4'):
    video.track_video(config, tmp_path, str(bad), '1,1,5,5', '', tracker=tracker)
  with pytest.raises(video.VideoOpenError, match='missing.mp4 does not exist'):
    video.track_video(config, tmp_path, str(tmp_path / 'missing.mp4'), '1,1,5,5', '',
                      tracker=tracker)
  (tmp_path / 'empty').mkdir()
  with pytest.raises(video.VideoOpenError, match='empty holds no'):
    video.track_video(config, tmp_path, str(tmp_path / 'empty'), '1,1,5,5', '', tracker=tracker)
  write_mp4(tmp_path / 'ok.mp4', moving_square_frames(2))
  with pytest.raises(ValueError, match='outside'):
    video.track_video(config, tmp_path, str(tmp_path / 'ok.mp4'), '500,1,5,5', '',
                      tracker=tracker)
  for text in ('1,2,3', 'a,b,c,d', None):
    with pytest.raises(ValueError, match='x,y,w,h'):
      video.parse_box(text)
