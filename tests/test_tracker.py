"""The online tracker and the batched runner (cost_jax.tracking).

The key test replaces the network by an oracle that reads the target off the
search crop: a tracker whose crop / window / decode geometry is right then
follows a moving square exactly, independent of any learning.
"""

import dataclasses
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cost as cost_config
from cost_jax import evaluate
from cost_jax.checkpointing import Checkpoints
from cost_jax.convert import names, store
from cost_jax.evaluation import results_io
from cost_jax.models import factory
from cost_jax.tracking import engine as engine_lib
from cost_jax.tracking import runner
from cost_jax.tracking import tracker as tracker_lib
from cost_jax.tracking.tracker import Tracker
from input_pipeline import synthetic
from input_pipeline.readers import load_dataset
from tests import tolerances


def oracle_forward(grid_side, two_class, threshold):
  """A 'network' that finds the bright square in each crop: logits peaked at the cell holding
  its centre, that cell's box = the square's box (crop-normalised), other cells garbage.
  """

  def forward(variables, crops, template, text):
    del variables, template, text
    s = crops.shape[1]
    mask = jnp.min(crops, axis=-1) >= threshold  # (B, S, S)
    idx = jnp.arange(s)

    def extent(hit):  # (B, S) -> first index, one past the last
      return (
          jnp.min(jnp.where(hit, idx, s), axis=1),
          jnp.max(jnp.where(hit, idx, -1), axis=1) + 1,
      )

    x0, x1 = extent(jnp.any(mask, axis=1))
    y0, y1 = extent(jnp.any(mask, axis=2))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    cell = s / grid_side
    k = (jnp.floor(cy / cell) * grid_side + jnp.floor(cx / cell)).astype(
        jnp.int32
    )
    onehot = jax.nn.one_hot(k, grid_side**2)
    box = jnp.stack([cx, cy, x1 - x0, y1 - y0], axis=-1) / s
    garbage = jnp.array([0.3, 0.7, 0.1, 0.9])
    boxes = jnp.where(onehot[..., None] > 0, box[:, None, :], garbage)
    logits = onehot * 20.0 - 10.0
    if two_class:
      logits = jnp.stack([logits, jnp.zeros_like(logits)], axis=-1)
    return {'logits': logits, 'boxes': boxes}

  return forward


def square_video(side, steps, size=(200, 160), seed=0, noise=150):
  """Frames with a white side x side square on a dark noisy background; integer positions."""
  rng = np.random.default_rng(seed)
  width, height = size
  x, y, vx, vy = 20, 100, 9, -7
  frames, boxes = [], []
  for _ in range(steps):
    frame = rng.integers(0, noise, (height, width, 3), dtype=np.uint8)
    frame[y : y + side, x : x + side] = 255
    frames.append(frame)
    boxes.append([x, y, side, side])
    if not 0 <= x + vx <= width - side:
      vx = -vx
    if not 0 <= y + vy <= height - side:
      vy = -vy
    x, y = x + vx, y + vy
  return frames, np.asarray(boxes, np.float64)


def zero_variables(config):
  model, spec = factory.create_model(config)
  return (
      jax.tree.map(
          lambda s: jnp.zeros(s.shape, s.dtype),
          factory.variable_shapes(model, spec),
      ),
      spec,
  )


@pytest.mark.parametrize('variant', ['smoke', 'smoke,no_lb'])
def test_oracle_tracker_follows_the_square_exactly(variant):
  # Side 32: the 4x search crop is 128 = search_size and the 2x template 64 = template_size,
  # so no resize: the decoded box must equal the true box (up to float32).
  config = cost_config.get_config(variant)
  variables, spec = zero_variables(config)
  tracker = Tracker(
      config,
      variables,
      forward=oracle_forward(spec.grid_side, not spec.language, 255),
  )
  frames, boxes = square_video(32, 30)
  tracker.initialize(frames[0], boxes[0], 'the white square')
  out = np.array([tracker.track(f)[0] for f in frames[1:]])
  # Decoding rounds 5 times in float32 (box / S, x s_x, + centre, - s_x / 2,
  # the centre's cast) at <= s_x + W = 128 + 200 px; the oracle re-detects
  # the integer-placed square every frame, so nothing accumulates.
  np.testing.assert_allclose(
      out, boxes[1:], atol=tolerances.roundings(5, 128 + 200)
  )
  assert (
      np.ptp(boxes[:, 0]) > 100 and np.ptp(boxes[:, 1]) > 60
  )  # it really moved, to edges


def lost_aware(forward):
  """The oracle, with all logits low when the crop holds no square (so the
  chosen candidate's probability says the target is lost)."""

  def wrapped(variables, crops, template, text):
    out = forward(variables, crops, template, text)
    seen = jnp.any(jnp.min(crops, axis=-1) >= 128, axis=(1, 2))
    low = jnp.full_like(out['logits'], -10.0)
    seen = seen.reshape((-1,) + (1,) * (out['logits'].ndim - 1))
    return {**out, 'logits': jnp.where(seen, out['logits'], low)}

  return wrapped


def fast_square_video(side=16, steps=12, speed=(40, 6), size=(480, 160)):
  """A side x side white square moving ``speed`` px per frame: 2.5 of its
  sides in x, beyond the +-2 sides a 4x search region reaches."""
  rng = np.random.default_rng(3)
  frames, boxes = [], []
  for t in range(steps):
    x, y = 10 + speed[0] * t, 60 + speed[1] * t
    frame = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
    frame[y : y + side, x : x + side] = 255
    frames.append(frame)
    boxes.append([x, y, side, side])
  return frames, np.asarray(boxes, np.float64)


@pytest.mark.parametrize(
    'settings, follows',
    [
        ({}, False),  # TransT's search: the square leaves it at frame 1
        ({'motion': 'velocity'}, False),  # no displacement seen yet
        ({'redetect_tiles': 3}, True),  # found again every frame
        ({'motion': 'velocity', 'redetect_tiles': 3}, True),
    ],
)
def test_fast_target_needs_redetection(settings, follows):
  config = cost_config.get_config('smoke')
  config.track.update(settings, lost_score=0.5)
  variables, spec = zero_variables(config)
  forward = lost_aware(oracle_forward(spec.grid_side, False, 128))
  tracker = Tracker(config, variables, forward=forward)
  frames, boxes = fast_square_video()
  tracker.initialize(frames[0], boxes[0], 'the white square')
  out = np.array([tracker.track(f)[0] for f in frames[1:]])
  # Side 16 -> s_x = 64, resized to the smoke's 128 px crop: the oracle finds
  # each edge to one crop pixel, half an image pixel, so x, y are off by
  # < 0.5 px and w, h by < 1 px (see test_oracle_tracker_with_resized_crops);
  # a lost frame is off by the 40 px step.
  hit = np.all(np.abs(out - boxes[1:]) <= 1.0, axis=1)
  assert hit.all() == follows, hit


def test_velocity_keeps_the_redetected_target_in_the_first_search():
  # With the displacement carried over, the search centred on the prediction
  # holds the square from frame 2 on: re-detection runs only on frame 1.
  config = cost_config.get_config('smoke')
  config.track.update(motion='velocity', redetect_tiles=3, lost_score=0.5)
  variables, spec = zero_variables(config)
  calls = []
  oracle = lost_aware(oracle_forward(spec.grid_side, False, 128))

  def forward(variables, crops, template, text):
    jax.debug.callback(lambda n: calls.append(int(n)), crops.shape[0])
    return oracle(variables, crops, template, text)

  tracker = Tracker(config, variables, forward=forward)
  frames, boxes = fast_square_video()
  tracker.initialize(frames[0], boxes[0], 'the white square')
  for f in frames[1:]:
    tracker.track(f)
  assert calls == [1, 8] + [1] * (len(frames) - 2)


def test_tile_offsets():
  offsets = engine_lib.search.tile_offsets(3, 0.75)
  assert offsets.shape == (8, 2)
  assert not np.any(
      np.all(offsets == 0, axis=1)
  )  # the centre is searched first
  np.testing.assert_array_equal(np.unique(offsets), [-0.75, 0.0, 0.75])
  assert engine_lib.search.tile_offsets(1, 0.75).shape == (0, 2)


def test_oracle_tracker_with_resized_crops():
  config = cost_config.get_config('smoke')
  variables, spec = zero_variables(config)
  tracker = Tracker(
      config, variables, forward=oracle_forward(spec.grid_side, False, 128)
  )
  frames, boxes = square_video(
      20, 25, seed=1, noise=60
  )  # s_x = 80 -> resized to 128
  tracker.initialize(frames[0], boxes[0], 'the white square')
  out = np.array([tracker.track(f)[0] for f in frames[1:]])
  # The oracle measures the square in crop pixels (1 crop px = 80/128 image px): no drift.
  # Not a float bound: each edge is found to < 1 crop px (0.625 px), so
  # x, y are off by < 0.625 and w, h (two edges) by < 1.25 <= 1.5 px;
  # uniform errors average half their bound,
  # (0.31 + 0.31 + 0.63 + 0.63) / 4 = 0.47 < 0.6 px.
  np.testing.assert_allclose(out, boxes[1:], atol=1.5)
  assert np.abs(out - boxes[1:]).mean() < 0.6


def transt_reference(
    scores, boxes, center, s_x, image_wh, wi=0.49, min_size=10
):
  """pysot_toolkit TransT.track after the network, in numpy float64."""
  g = int(round(len(scores) ** 0.5))
  window = np.outer(np.hanning(g), np.hanning(g)).flatten()
  pscore = scores * (1 - wi) + window * wi
  best = np.argmax(pscore)
  bbox = boxes[best] * s_x
  cx = bbox[0] + center[0] - s_x / 2
  cy = bbox[1] + center[1] - s_x / 2
  w, h = image_wh
  return (
      np.array(
          [
              max(0, min(cx, w)),
              max(0, min(cy, h)),
              max(min_size, min(bbox[2], w)),
              max(min_size, min(bbox[3], h)),
          ]
      ),
      scores[best],
  )


@pytest.mark.parametrize('grid', [11, 21, 32])
def test_select_and_decode_matches_transt(grid):
  rng = np.random.default_rng(grid)
  b, n = 6, grid * grid
  scores = rng.uniform(0, 1, (b, n)).astype(np.float32)
  scores[0] = 0.5  # flat scores: the window decides (centre cell)
  boxes = rng.uniform(0, 1.2, (b, n, 4)).astype(np.float32)
  geometry = np.stack(
      [
          rng.uniform(0, 300, b),
          rng.uniform(0, 200, b),
          rng.integers(40, 400, b),
          np.full(b, 320),
          np.full(b, 8),
      ],
      axis=1,
  ).astype(
      np.float32
  )  # H < 10
  window = engine_lib.hanning_window(grid)
  np.testing.assert_array_equal(
      window, np.outer(np.hanning(grid), np.hanning(grid)).ravel()
  )
  got, got_score = jax.jit(engine_lib.select_and_decode, static_argnums=(4, 5))(
      scores, boxes, window.astype(np.float32), geometry, 0.49, 10.0
  )
  for i in range(b):
    want, want_score = transt_reference(
        scores[i].astype(np.float64),
        boxes[i],
        geometry[i, :2],
        geometry[i, 2],
        geometry[i, 3:],
    )
    # float32 vs float64: 3 roundings (x s_x, + centre, - s_x / 2) at
    # <= 1.2 x 400 + 300 px.
    np.testing.assert_allclose(got[i], want, atol=tolerances.roundings(3, 780))
    assert got_score[i] == want_score


def short_sequences(root):
  """Five synthetic sequences of different lengths (1 to 9 frames)."""
  synthetic.generate(root, num_videos=5, frames=9, size=(96, 72), seed=3)
  seqs = sorted(load_dataset('synthetic', root, 'all'), key=lambda s: s.name)
  lengths = [9, 3, 1, 6, 4]
  return [
      dataclasses.replace(
          s, frames=s.frames[:n], boxes=s.boxes[:n], visible=s.visible[:n]
      )
      for s, n in zip(seqs, lengths)
  ]


@pytest.fixture(scope='module')
def sequences(tmp_path_factory):
  return short_sequences(str(tmp_path_factory.mktemp('synthetic')))


def test_batched_runner_equals_one_at_a_time(smoke_model, sequences, tmp_path):
  config, _, _, variables = smoke_model
  eng = engine_lib.Engine(config, variables)
  report = runner.run_sequences(
      eng, sequences, tmp_path, 'cost', batch_size=3, fingerprint={'w': 1}
  )
  assert sorted(report['tracked']) == sorted(s.name for s in sequences)
  assert report['compile_s'] > 0 and report['fps'] > 0
  tracker = Tracker(config, variables)
  for seq in sequences:
    tracker.initialize(
        runner.read_frame(seq.frames[0]), seq.init_box, seq.language
    )
    single = [seq.init_box] + [
        tracker.track(runner.read_frame(f))[0] for f in seq.frames[1:]
    ]
    batched = results_io.read_boxes(
        tmp_path / 'cost' / f'{seq.name}.txt', len(seq)
    )
    # Batch 3 vs 1: XLA may order the network's sums differently.
    tol = tolerances.smoke_tracking_px(single, config.data.search_factor)
    np.testing.assert_allclose(
        batched, np.array(single), atol=tol, err_msg=seq.name
    )
    assert len(
        results_io.read_times(tmp_path / 'cost' / f'{seq.name}_time.txt')
    ) == len(seq)


def test_rerun_finishes_only_missing_and_leaves_others(
    smoke_model, sequences, tmp_path
):
  config, _, _, variables = smoke_model
  eng = engine_lib.Engine(config, variables)
  other = tmp_path / 'other_tracker' / f'{sequences[0].name}.txt'
  other.parent.mkdir()
  other.write_text('1,2,3,4\n')
  runner.run_sequences(
      eng, sequences, tmp_path, 'cost', batch_size=3, fingerprint={'w': 1}
  )
  done = {
      s.name: os.stat(tmp_path / 'cost' / f'{s.name}.txt').st_mtime_ns
      for s in sequences
  }
  os.remove(
      tmp_path / 'cost' / f'{sequences[3].name}.txt'
  )  # "interrupted" before this one
  report = runner.run_sequences(
      eng, sequences, tmp_path, 'cost', batch_size=3, fingerprint={'w': 1}
  )
  assert report['tracked'] == [sequences[3].name]
  assert len(report['skipped']) == len(sequences) - 1
  for s in sequences:
    if s is not sequences[3]:
      assert (
          os.stat(tmp_path / 'cost' / f'{s.name}.txt').st_mtime_ns
          == done[s.name]
      )
  assert other.read_text() == '1,2,3,4\n'
  with pytest.raises(runner.ResultsConflictError, match='another config'):
    runner.run_sequences(
        eng, sequences, tmp_path, 'cost', batch_size=3, fingerprint={'w': 2}
    )
  with pytest.raises(runner.ResultsConflictError, match='other_tracker'):
    runner.run_sequences(
        eng, sequences, tmp_path, 'other_tracker', batch_size=3
    )
  assert other.read_text() == '1,2,3,4\n'


def test_wrong_line_count_names_the_file(sequences, tmp_path):
  folder = runner.check_manifest(tmp_path, 'cost', {})
  bad = os.path.join(folder, f'{sequences[0].name}.txt')
  results_io.write_boxes(bad, np.ones((2, 4)))
  with pytest.raises(
      results_io.ResultsLengthError, match=f'{bad}.*expected 9 lines'
  ):
    runner.pending_sequences(folder, sequences)


def test_missing_and_corrupt_frames_are_named_and_skipped(
    smoke_model, sequences, tmp_path, caplog
):
  config, _, _, variables = smoke_model
  eng = engine_lib.Engine(config, variables)
  seq = sequences[0]
  broken = dataclasses.replace(seq, frames=list(seq.frames))
  broken.frames[4] = str(tmp_path / 'gone.jpg')
  corrupt = tmp_path / 'corrupt.jpg'
  corrupt.write_bytes(b'not a jpeg')
  broken.frames[6] = str(corrupt)
  report = runner.run_sequences(
      eng, [broken], tmp_path / 'a', 'cost', batch_size=3
  )
  assert report['bad_frames'] == {
      seq.name: [(4, broken.frames[4]), (6, str(corrupt))]
  }
  assert (
      'gone.jpg is missing' in caplog.text
      and 'corrupt.jpg is unreadable' in caplog.text
  )
  broken.frames[0] = str(
      corrupt
  )  # the initial box refers to frame 0: the sequence fails
  report = runner.run_sequences(
      eng, [broken], tmp_path / 'b', 'cost', batch_size=3
  )
  assert (
      'corrupt.jpg of sequence' in report['failed'][seq.name]
      and not report['tracked']
  )


def test_bad_tracker_inputs(smoke_model):
  config, _, _, variables = smoke_model
  tracker = Tracker(config, variables)
  frame = np.zeros((60, 80, 3), np.uint8)
  with pytest.raises(RuntimeError, match='initialize'):
    tracker.track(frame)
  for box, match in [
      ((100, 10, 5, 5), 'outside'),
      ((-20, 10, 5, 5), 'outside'),
      ((10, 10, 0, 5), 'zero or negative'),
      ((10, 10, np.nan, 5), 'NaN'),
      ((1, 2, 3), '4 numbers'),
  ]:
    with pytest.raises(ValueError, match=match):
      tracker.initialize(frame, box, 'a box')
  with pytest.raises(ValueError, match='uint8'):
    tracker.initialize(frame.astype(np.float32), (10, 10, 5, 5), 'a box')
  with pytest.raises(ValueError, match='HxWx3'):
    tracker.initialize(frame[..., 0], (10, 10, 5, 5), 'a box')
  with pytest.raises(TypeError, match='description'):
    tracker.initialize(frame, (10, 10, 5, 5), 3)
  tracker.initialize(frame, (10, 10, 20, 15), 'a box')
  with pytest.raises(ValueError, match='HxWx3'):
    tracker.track(frame[..., :2])


def save_checkpoint(workdir, config, variables, step=7):
  """A checkpoint as training writes it (cost_jax.checkpointing: items 'state' + 'config')."""
  state = {
      'step': step,
      'params': variables['params'],
      'batch_stats': variables['batch_stats'],
      'opt_state': {'count': np.zeros((), np.int32)},
  }
  checkpoints = Checkpoints(workdir, config, every=1, keep=3, async_save=False)
  checkpoints.save(step, state, force=True)
  checkpoints.close()


def test_evaluate_end_to_end_and_resume(smoke_model, sequences, tmp_path):
  config, _, _, variables = smoke_model
  config = config.copy_and_resolve_references()
  # frames: <root>/VL-SOT2x0/<video>/img/000001.jpg
  config.data.eval_root = str(Path(sequences[0].frames[0]).parents[3])
  config.track.batch_sequences = (
      3  # the compilation of the runner test is reused
  )
  with pytest.raises(FileNotFoundError, match='train first'):
    evaluate.evaluate(config, str(tmp_path))
  save_checkpoint(str(tmp_path), config, variables)
  restored = Tracker.from_workdir(config, str(tmp_path))
  jax.tree.map(
      np.testing.assert_array_equal,
      restored.engine.variables['params'],
      variables['params'],
  )
  metrics = evaluate.evaluate(config, str(tmp_path))
  assert set(metrics['trackers']) == {'cost', 'ncc', 'static'}
  assert metrics['protocol'] == 'vlsot500'  # The synthetic set's default.
  for path in metrics['outputs'].values():
    assert os.path.exists(path), path
  assert len(metrics['speed']['tracked']) == 5
  again = evaluate.evaluate(config, str(tmp_path))
  assert again['speed']['tracked'] == [] and len(again['speed']['skipped']) == 5
  assert (
      again['trackers']['cost']['overall']
      == metrics['trackers']['cost']['overall']
  )
  save_checkpoint(
      str(tmp_path), config, variables, step=8
  )  # new weights: refuse to mix results
  with pytest.raises(runner.ResultsConflictError, match='weights'):
    evaluate.evaluate(config, str(tmp_path))
  bad = config.copy_and_resolve_references()
  bad.model.hidden_dim = 48
  with pytest.raises(ValueError, match='does not fit config'):
    tracker_lib.restore_variables(bad, str(tmp_path))


def test_from_converted_weights(smoke_model, tmp_path):
  config, _, _, variables = smoke_model
  flat = {k: np.asarray(v) for k, v in names.flatten(variables).items()}
  full = str(tmp_path / 'full.safetensors')
  store.write(full, flat, {'covers': [''], 'variant': config.variant})
  tracker = Tracker.from_converted(config, full)
  jax.tree.map(
      np.testing.assert_array_equal,
      tracker.engine.variables['params'],
      variables['params'],
  )
  assert tracker.weights_info.startswith('converted:')
  part = str(tmp_path / 'part.safetensors')
  store.write(
      part,
      {k: v for k, v in flat.items() if 'backbone' in k},
      {'covers': list(store.VISUAL_BRANCH)},
  )
  with pytest.raises(ValueError, match='covers only part'):
    Tracker.from_converted(config, part)
  with pytest.raises(FileNotFoundError, match='nothing.safetensors'):
    Tracker.from_converted(config, str(tmp_path / 'nothing.safetensors'))
