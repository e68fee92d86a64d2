"""Synthetic VL small-object videos: determinism, read-back, small targets, speed, absence."""

import filecmp
import os

import cv2
import numpy as np
import pytest

from input_pipeline import synthetic
from input_pipeline.readers import load_dataset
from input_pipeline.stats import box_sizes, relative_speed
from input_pipeline.synth_labels import annotate
from input_pipeline.synth_render import render_frames
from input_pipeline.synth_scene import COLOURS, GREY, SynthOptions

NUM_VIDEOS, SEED = 10, 7


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
  """The same 10-video set generated twice with one seed, and once with another."""
  base = tmp_path_factory.mktemp('synthetic')
  dirs = {k: str(base / k) for k in ('a', 'b', 'other')}
  names = synthetic.generate(
      dirs['a'], 'vlsot500', NUM_VIDEOS, SEED, high_speed_fraction=0.3
  )
  assert (
      synthetic.generate(
          dirs['b'], 'vlsot500', NUM_VIDEOS, SEED, high_speed_fraction=0.3
      )
      == names
  )
  synthetic.generate(
      dirs['other'], 'vlsot500', NUM_VIDEOS, SEED + 1, high_speed_fraction=0.3
  )
  return dirs, names


def _files(root):
  return sorted(
      os.path.relpath(os.path.join(d, f), root)
      for d, _, fs in os.walk(root)
      for f in fs
  )


def test_same_seed_gives_identical_files(generated):
  dirs, _ = generated
  files = _files(dirs['a'])
  assert files == _files(dirs['b']) and len(files) > NUM_VIDEOS * 60
  match, mismatch, errors = filecmp.cmpfiles(
      dirs['a'], dirs['b'], files, shallow=False
  )
  assert not mismatch and not errors  # annotation files and JPEG bytes


def test_other_seed_differs(generated):
  dirs, _ = generated
  a = {s.name: s for s in load_dataset('vlsot500', dirs['a'])}
  b = {s.name: s for s in load_dataset('vlsot500', dirs['other'])}
  assert set(a) != set(b) or any(
      a[n].language != b[n].language
      or not np.array_equal(a[n].boxes, b[n].boxes, equal_nan=True)
      for n in a
  )


def test_readers_read_the_set_back(generated):
  dirs, names = generated
  seqs = load_dataset('vlsot500', dirs['a'])
  assert sorted(s.name for s in seqs) == sorted(names)
  fast = synthetic.high_speed_plan(NUM_VIDEOS, SEED, 0.3)
  assert len(load_dataset('vlsot270', dirs['a'])) == fast.sum() == 3
  opts = SynthOptions()
  for seq in seqs:
    index = int(seq.name[3:7])
    scene = synthetic.make_scene(index, SEED, opts, bool(fast[index]))
    labels = annotate(scene)
    assert seq.extra['subset'] == ('VL-SOT270' if fast[index] else 'VL-SOT230')
    assert seq.language == scene.description and len(seq.language.split()) <= 38
    assert (
        scene.target.colour in seq.language
        and scene.target.shape in seq.language
    )
    assert len(seq.frames) == opts.frames and all(
        os.path.isfile(f) for f in seq.frames[:2]
    )
    np.testing.assert_array_equal(seq.visible, ~labels['absent'])
    np.testing.assert_allclose(seq.boxes, labels['boxes'], atol=0.006)
    assert len(seq.extra['attribute_values']) == 17 and seq.attributes['NAO']
    assert seq.image_size == (opts.width, opts.height)


def test_targets_are_small_and_drawn_where_the_box_is(generated):
  dirs, _ = generated
  for seq in load_dataset('vlsot500', dirs['a']):
    sizes = box_sizes(seq.boxes[seq.visible])
    assert np.all(sizes >= 3) and np.all(sizes <= 30), (
        seq.name,
        sizes.min(),
        sizes.max(),
    )
    assert np.nanmean(box_sizes(seq.boxes)) < 22
    colour, shape = seq.name.split('_')[1:3]
    if seq.extra['subset'] == 'VL-SOT230' and shape not in ('triangle', 'star'):
      x, y, w, h = seq.boxes[0]
      pixel = cv2.imread(seq.frames[0])[int(y + h / 2), int(x + w / 2)].astype(
          int
      )
      assert np.abs(pixel - COLOURS[colour]).max() < 80, (seq.name, pixel)


def test_high_speed_subset_is_measurably_faster(generated):
  dirs, _ = generated
  slow = [relative_speed(s.boxes) for s in load_dataset('vlsot230', dirs['a'])]
  fast_seqs = load_dataset('vlsot270', dirs['a'])
  fast = [relative_speed(s.boxes) for s in fast_seqs]
  assert (
      np.mean(fast) > 3 * np.mean(slow) and min(fast) > 1.5 and max(slow) < 1.5
  )
  for seq, value in zip(fast_seqs, fast):  # relative_speed.txt records Eq. (1)
    assert seq.extra['relative_speed'] == pytest.approx(value, abs=2e-3)
    assert seq.attributes['MB']


def test_absence_present_but_never_on_the_first_frame(generated):
  dirs, _ = generated
  seqs = load_dataset('vlsot500', dirs['a'])
  assert sum(int((~s.visible).sum()) for s in seqs) > 0
  assert any(s.attributes['OV'] or s.attributes['FO'] for s in seqs)
  assert all(s.visible[0] for s in seqs)


@pytest.mark.parametrize('mode', ['color', 'shape', 'none'])
def test_distractor_modes(mode):
  opts = SynthOptions(distractors=mode)
  for index in range(12):
    scene = synthetic.make_scene(index, 0, opts, high_speed=False)
    target = scene.target
    if mode == 'none':
      assert not scene.distractors
    for d in scene.distractors:
      if mode == 'color':  # only the colour word tells them apart
        assert d.shape == target.shape and d.colour != target.colour
      else:
        assert d.colour == target.colour and d.shape != target.shape


def test_lasot_layout_marker_and_regeneration(tmp_path):
  out = str(tmp_path / 'lasot')
  names = synthetic.generate(
      out, 'lasot', 5, 1, frames=12, size=(96, 64), test_fraction=0.4
  )
  train = load_dataset('lasot', out, 'train')
  test = load_dataset('lasot', out, 'test')
  assert (
      sorted(s.name for s in train + test) == sorted(names) and len(test) == 2
  )
  seq = test[0]
  assert seq.object_class == seq.name.rsplit('-', 1)[0] and seq.language
  assert seq.frames[0].endswith(os.path.join('img', '00000001.jpg'))
  marker = os.path.join(out, synthetic.MARKER)
  stamp = os.path.getmtime(marker)
  assert (
      synthetic.generate(
          out, 'lasot', 5, 1, frames=12, size=(96, 64), test_fraction=0.4
      )
      == names
  )
  assert os.path.getmtime(marker) == stamp  # complete: skipped
  again = synthetic.generate(out, 'lasot', 3, 2, frames=12, size=(96, 64))
  assert (
      len(load_dataset('lasot', out, 'all')) == len(again) == 3
  )  # old videos removed


def test_cli_writes_a_readable_set(tmp_path):
  out = str(tmp_path / 'cli')
  assert (
      synthetic.main(
          [
              '--out',
              out,
              '--num_videos',
              '2',
              '--seed',
              '3',
              '--frames',
              '8',
              '--size',
              '80x60',
              '--distractors',
              'color',
          ]
      )
      == 0
  )
  seqs = load_dataset('synthetic', out)
  assert len(seqs) == 2 and all(len(s) == 8 for s in seqs)
  assert cv2.imread(seqs[0].frames[0]).shape == (60, 80, 3)


def _centre_bgr(frame, box):
  """Mean BGR of the 3x3 pixels at the box centre."""
  cx, cy = (int(box[0] + box[2] / 2), int(box[1] + box[3] / 2))
  return (
      frame[cy - 1 : cy + 2, cx - 1 : cx + 2]
      .reshape(-1, 3)
      .astype(float)
      .mean(0)
  )


def test_language_set_hides_the_colour_in_the_first_frame():
  """'language' mode: every distractor has the target's shape and another
  colour; the target is grey at frame 0 and in its named colour later."""
  opts = SynthOptions(
      frames=6,
      distractors='language',
      occlusion_prob=0,
      out_of_view_prob=0,
      illumination_prob=0,
      rotation_prob=0,
      size_range=(14.0, 18.0),
  )
  for index in range(4):
    scene = synthetic.make_scene(index, SEED, opts, high_speed=False)
    target = scene.target
    assert scene.distractors and target.grey_until == 1
    assert all(
        d.shape == target.shape and d.colour != target.colour
        for d in scene.distractors
    )
    assert target.colour in scene.description
    frames = list(render_frames(scene))
    boxes = annotate(scene)['boxes']
    first = _centre_bgr(frames[0], boxes[0])
    later = _centre_bgr(frames[3], boxes[3])
    # Within the render noise (3 sigma of N(0, 3) per channel, plus
    # anti-aliasing at the shape's edge) of the drawn colour.
    np.testing.assert_allclose(first, GREY, atol=25)
    np.testing.assert_allclose(later, COLOURS[target.colour], atol=25)


def test_grey_start_keeps_other_sets_unchanged():
  """The grey-start option draws nothing from the scene's stream when off."""
  plain = synthetic.make_scene(3, SEED, SynthOptions(), False)
  again = synthetic.make_scene(3, SEED, SynthOptions(grey_frames=0), False)
  assert (
      plain.description == again.description
      and plain.render_seed == again.render_seed
  )
  assert plain.target.grey_until == 0
  grey = synthetic.make_scene(3, SEED, SynthOptions(grey_frames=20), False)
  assert grey.target.grey_until == 20


def test_a_named_set_with_other_options_is_refused_not_replaced(tmp_path):
  root = str(tmp_path / 'set')
  names = synthetic.generate(root, 'vlsot500', 2, SEED, frames=4, size=(96, 72))
  before = _files(root)
  with pytest.raises(
      synthetic.SetMismatchError, match="distractors: 'mixed' -> 'language'"
  ):
    synthetic.generate(
        root,
        'vlsot500',
        2,
        SEED,
        frames=4,
        size=(96, 72),
        distractors='language',
        replace=False,
    )
  assert _files(root) == before  # nothing deleted
  assert (
      synthetic.generate(
          root, 'vlsot500', 2, SEED, frames=4, size=(96, 72), replace=False
      )
      == names
  )
