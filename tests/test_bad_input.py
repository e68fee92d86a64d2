"""Unreadable frames (a truncated JPEG, a text file named .jpg) while tracking.

`--mode=track` on a frame folder and the batched evaluator carry the last box
over them and go on, or stop with what was tracked kept
(cost_jax.tracking.bad_frames).
"""

import dataclasses
import logging
import os
from pathlib import Path
import shutil

import cv2
import numpy as np
import pytest

from cost_jax import evaluate
from cost_jax.evaluation import results_io
from cost_jax.tracking import bad_frames, runner, video
from cost_jax.tracking import engine as engine_lib
from cost_jax.tracking.tracker import Tracker
from tests.test_track_video import moving_square_frames, read_video
from tests.test_tracker import save_checkpoint, short_sequences

TRUNCATED, NOT_AN_IMAGE = 4, 8  # The two bad frames of the folder.


def break_frames(paths, truncated, not_an_image):
  """Cuts the last fifth off the JPEG `paths[truncated]` (libjpeg still decodes it, filling
  the rest with grey), replaces `paths[not_an_image]` by text."""
  with open(paths[truncated], 'rb') as f:
    data = f.read()
  with open(paths[truncated], 'wb') as f:
    f.write(data[: len(data) * 4 // 5])
  with open(paths[not_an_image], 'w', encoding='utf-8') as f:
    f.write('not an image\n')


@pytest.fixture
def folder(tmp_path):
  """12 JPEG frames of a moving square, frames 4 (truncated) and 8 (text) broken."""
  src = tmp_path / 'frames'
  src.mkdir()
  paths = [str(src / f'{i:06d}.jpg') for i in range(12)]
  for path, frame in zip(paths, moving_square_frames(12)):
    cv2.imwrite(path, frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
  good = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths]
  break_frames(paths, TRUNCATED, NOT_AN_IMAGE)
  return str(src), paths, good


@pytest.fixture(scope='module')
def tracker(smoke_model):
  config, _, _, variables = smoke_model
  return Tracker(config, variables)


def track_config(smoke_model, on_bad_frame='skip', max_bad_frames=50):
  config = smoke_model[0].copy_and_resolve_references()
  config.track.on_bad_frame = on_bad_frame
  config.track.max_bad_frames = max_bad_frames
  return config


def read_boxes_txt(path):
  """Rows frame, x, y, w, h, score of boxes.txt (x,y,w,h) and scores.txt beside it."""
  scores = np.loadtxt(
      os.path.join(os.path.dirname(path), 'scores.txt'), ndmin=1
  )
  boxes = results_io.read_boxes(path, len(scores))
  return np.column_stack([np.arange(len(scores)), boxes, scores])


def test_truncated_jpeg_is_unreadable(folder):
  _, paths, _ = folder
  assert cv2.imread(paths[TRUNCATED]) is not None  # libjpeg fills it with grey
  for index in (TRUNCATED, NOT_AN_IMAGE):
    with pytest.raises(
        runner.FrameReadError, match=f'{paths[index]} is unreadable'
    ):
      runner.read_frame(paths[index])


def test_track_video_carries_the_box_over_bad_frames(
    smoke_model, tracker, folder, tmp_path, caplog
):
  src, paths, good = folder
  out = tmp_path / 'out'
  with caplog.at_level(logging.WARNING):
    summary = video.track_video(
        track_config(smoke_model),
        tmp_path,
        src,
        '10,30,12,12',
        'the red square',
        str(out),
        tracker=tracker,
    )
  bad = [(TRUNCATED, paths[TRUNCATED]), (NOT_AN_IMAGE, paths[NOT_AN_IMAGE])]
  assert summary['frames'] == 12 and summary['bad_frames'] == bad
  for _, path in bad:  # warned about, naming the file; the summary names both
    assert sum(path in r.getMessage() for r in caplog.records) == 2, caplog.text
  assert '2 unreadable frame(s) skipped' in caplog.text
  assert (out / 'bad_frames.txt').read_text() == ''.join(
      f'{i},{p}\n' for i, p in bad
  )
  rows = read_boxes_txt(out / 'boxes.txt')
  assert len(rows) == 12 and len(read_video(out / 'tracked.mp4')) == 12
  for i, _ in bad:  # the last box carried over, score 0
    np.testing.assert_array_equal(rows[i, 1:5], rows[i - 1, 1:5])
    assert rows[i, 5] == 0
  # A bad frame leaves the tracker's state alone: the other frames get exactly the boxes
  # of tracking the good frames only (same jitted step, same inputs).
  kept = [i for i in range(12) if i not in (TRUNCATED, NOT_AN_IMAGE)]
  tracker.initialize(good[0], (10, 30, 12, 12), 'the red square')
  alone = [tracker.track(good[i])[0] for i in kept[1:]]
  np.testing.assert_allclose(
      rows[kept[1:], 1:5], np.array(alone), rtol=0, atol=5e-4
  )
  # (boxes.txt rounds to 3 decimals: |error| <= 5e-4.)


@pytest.mark.parametrize(
    'on_bad_frame, limit, stop_at',
    [('stop', 50, TRUNCATED), ('skip', 1, NOT_AN_IMAGE)],
)
def test_track_video_stops_with_what_was_tracked(
    smoke_model, tracker, folder, tmp_path, on_bad_frame, limit, stop_at
):
  src, paths, _ = folder
  out = tmp_path / 'out'
  with pytest.raises(
      bad_frames.BadFramesError, match=f'frame {stop_at} .{paths[stop_at]}'
  ) as e:
    video.track_video(
        track_config(smoke_model, on_bad_frame, limit),
        tmp_path,
        src,
        '10,30,12,12',
        '',
        str(out),
        tracker=tracker,
    )
  assert 'Fix:' in str(e.value) and e.value.summary['frames'] == stop_at + 1
  assert len(read_boxes_txt(out / 'boxes.txt')) == stop_at + 1
  assert (
      len(read_video(out / 'tracked.mp4')) == stop_at + 1
  )  # finalised, playable
  assert (out / 'bad_frames.txt').read_text().splitlines()[
      -1
  ] == f'{stop_at},{paths[stop_at]}'


def test_unreadable_first_frame_is_refused(
    smoke_model, tracker, folder, tmp_path
):
  src, paths, _ = folder
  break_frames(paths, 0, 1)
  with pytest.raises(runner.FrameReadError, match=f'{paths[0]} .*first frame'):
    video.track_video(
        track_config(smoke_model),
        tmp_path,
        src,
        '10,30,12,12',
        '',
        str(tmp_path / 'out'),
        tracker=tracker,
    )
  assert not (tmp_path / 'out').exists()
  with pytest.raises(ValueError, match='on_bad_frame'):
    bad_frames.check_policy(track_config(smoke_model, 'ignore'))


# --- the batched evaluator -------------------------------------------------------------------
@pytest.fixture(scope='module')
def clean_sequences(tmp_path_factory):
  return short_sequences(str(tmp_path_factory.mktemp('synthetic_bad')))


def broken_copy(seqs, root, bad):
  """Copies of the sequences with frames ``bad`` = {seq index: (truncated, text)} broken."""
  out = []
  for k, seq in enumerate(seqs):
    folder = os.path.join(root, seq.name)
    os.makedirs(folder)
    frames = [shutil.copy(f, folder) for f in seq.frames]
    if k in bad:
      break_frames(frames, *bad[k])
    out.append(dataclasses.replace(seq, frames=frames))
  return out


def results(folder, seqs):
  return {
      s.name: results_io.read_boxes(
          os.path.join(folder, f'{s.name}.txt'), len(s)
      )
      for s in seqs
      if os.path.exists(os.path.join(folder, f'{s.name}.txt'))
  }


@pytest.fixture(scope='module')
def engine_and_clean(smoke_model, clean_sequences, tmp_path_factory):
  """The engine and the results of a run on the intact sequences (batch 3)."""
  config, _, _, variables = smoke_model
  eng = engine_lib.Engine(config, variables)
  folder = tmp_path_factory.mktemp('clean')
  runner.run_sequences(eng, clean_sequences, folder, 'cost', batch_size=3)
  return eng, results(folder / 'cost', clean_sequences)


def test_evaluator_carries_over_and_keeps_every_sequence(
    engine_and_clean, clean_sequences, tmp_path
):
  eng, clean = engine_and_clean
  seqs = broken_copy(
      clean_sequences, str(tmp_path / 'data'), {0: (4, 6), 4: (0, 2)}
  )
  report = runner.run_sequences(eng, seqs, tmp_path, 'cost', batch_size=3)
  folder = tmp_path / 'cost'
  got = results(folder, seqs)
  assert set(report['failed']) == {
      seqs[4].name
  }  # its first frame: nothing to start from
  assert 'initial box' in report['failed'][seqs[4].name]
  assert set(got) == {s.name for s in seqs[:4]}
  assert report['bad_frames'] == {
      seqs[0].name: [(4, seqs[0].frames[4]), (6, seqs[0].frames[6])]
  }
  assert (folder / f'{seqs[0].name}_bad_frames.txt').read_text() == (
      f'4,{seqs[0].frames[4]}\n6,{seqs[0].frames[6]}\n'
  )
  box = got[seqs[0].name]
  np.testing.assert_array_equal(box[4], box[3])
  np.testing.assert_array_equal(box[6], box[5])
  # Frames before the first bad one, and the other sequences, are those of the clean run:
  # the same compiled step, slot and inputs (slots of a batch do not mix).
  np.testing.assert_array_equal(box[:4], clean[seqs[0].name][:4])
  for seq in seqs[1:4]:
    np.testing.assert_array_equal(
        got[seq.name], clean[seq.name], err_msg=seq.name
    )


@pytest.mark.parametrize('on_bad_frame, limit', [('stop', 50), ('skip', 1)])
def test_evaluator_stop_keeps_other_results(
    engine_and_clean, clean_sequences, tmp_path, on_bad_frame, limit
):
  eng, clean = engine_and_clean
  seqs = broken_copy(clean_sequences, str(tmp_path / 'data'), {0: (1, 2)})
  report = runner.run_sequences(
      eng,
      seqs,
      tmp_path,
      'cost',
      batch_size=3,
      on_bad_frame=on_bad_frame,
      max_bad_frames=limit,
  )
  stop_at = 1 if on_bad_frame == 'stop' else 2
  assert list(report['failed']) == [seqs[0].name]
  assert (
      f'frame {stop_at} ({seqs[0].frames[stop_at]})'
      in report['failed'][seqs[0].name]
  )
  got = results(tmp_path / 'cost', seqs)
  # No sequence starts after the stop; the running ones finish and are written.
  assert seqs[0].name not in got and seqs[4].name not in got and got
  for name, boxes in got.items():
    np.testing.assert_array_equal(boxes, clean[name], err_msg=name)
  again = runner.run_sequences(
      eng, seqs, tmp_path, 'cost', batch_size=3
  )  # skip: the rest
  assert sorted(again['tracked']) == sorted([seqs[0].name, seqs[4].name])
  assert sorted(again['skipped']) == sorted(got)


def test_evaluate_names_stopped_sequences_then_reports_bad_frames(
    smoke_model, tmp_path, capsys
):
  config = track_config(smoke_model, 'stop')
  data = tmp_path / 'data'
  seqs = short_sequences(str(data))
  config.data.eval_root = str(Path(seqs[0].frames[0]).parents[3])
  config.track.batch_sequences = 3
  full = sorted(seqs, key=lambda s: s.name)[
      0
  ]  # evaluate reads whole (9-frame) sequences
  frames = sorted(os.listdir(os.path.dirname(full.frames[0])))
  break_frames(
      [os.path.join(os.path.dirname(full.frames[0]), f) for f in frames], 3, 5
  )
  save_checkpoint(str(tmp_path), config, smoke_model[3])
  with pytest.raises(
      bad_frames.BadFramesError, match=f'1 of 5 sequences stopped.*{full.name}'
  ):
    evaluate.evaluate(config, str(tmp_path))
  config.track.on_bad_frame = 'skip'
  metrics = evaluate.evaluate(config, str(tmp_path))
  assert len(metrics['speed']['tracked']) >= 1
  printed = capsys.readouterr().out
  assert (
      f'unreadable frames (last box carried over): 2 in 1 sequences: {full.name} (2)'
      in (printed)
  )
