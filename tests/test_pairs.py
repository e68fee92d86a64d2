"""The tf.data pair pipeline: crop math, determinism, resume, sharding, absence, bad input."""

import os
import shutil

import cv2
import numpy as np
import pytest

from configs import cost
from cost_jax import crops
from cost_jax.text import Tokenizer, resolve_text_path
from input_pipeline import augment, pairs, sources, synthetic
from input_pipeline.sampler import DatasetPool, PairSampler, absent_mask, sample_frame_ids
from input_pipeline.sequence import build_sequence

MAGENTA = (255, 0, 255)  # BGR and RGB alike.


@pytest.fixture(scope='module')
def syn_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('syn'))
  synthetic.generate(root, 'vlsot500', 4, 0, frames=20, size=(160, 120))
  return root


def _config(root, **data):
  config = cost.get_config('smoke')
  config.data.roots.synthetic = root
  config.data.update(data)
  return config


@pytest.fixture(scope='module')
def tokenizer():
  return Tokenizer(resolve_text_path(''), 20)


@pytest.fixture(scope='module')
def squares(tmp_path_factory):
  """A 30-frame video of one magenta square on grey noise; frames 10-14 absent,
  frame 20 a NaN box, frame 21 a zero-width box (both unflagged, never sampled).
  """
  folder = tmp_path_factory.mktemp('squares')
  rng = np.random.default_rng(0)
  frames, boxes, absent = [], [], []
  for t in range(30):
    image = rng.integers(40, 160, (240, 320, 1), dtype=np.uint8).repeat(
        3, axis=2
    )
    size = int(rng.integers(6, 21))
    x, y = int(rng.integers(0, 320 - size)), int(rng.integers(0, 240 - size))
    gone = 10 <= t < 15
    if not gone:
      cv2.rectangle(image, (x, y), (x + size - 1, y + size - 1), MAGENTA, -1)
    boxes.append([0, 0, 0, 0] if gone else [x, y, size, size])
    absent.append(gone)
    frames.append(str(folder / f'{t:06d}.png'))
    cv2.imwrite(frames[-1], image)
  boxes[20] = [np.nan] * 4
  boxes[21] = [5, 5, 0, 9]
  return build_sequence(
      'squares',
      'squares',
      frames,
      np.asarray(boxes, float),
      absent=np.asarray(absent),
      language='the magenta square',
  )


def _maker(seq, tokenizer, **params):
  sampler = PairSampler([DatasetPool('squares', [seq], 1.0)], max_gap=100)
  return pairs.PairMaker(
      sampler,
      {'squares': sources.read_file},
      augment.PairParams(**params),
      tokenizer,
      seed=3,
  )


def _magenta(pixels):
  p = pixels.reshape(-1, 3).astype(int)
  return (p[:, 0] > 150) & (p[:, 1] < 90) & (p[:, 2] > 150)


def _check_box_on_object(example, seq_box, side):
  """The crop-normalised box matches the magenta object's extent in the crop.

  TransT's crop window is `floor(c - sz/2)`, so the object sits up to one source
  pixel right of / below its label (the fractional part of the window corner);
  the colour test widens the extent by < 0.5 source px.  Checked per axis where
  the box lies inside the crop, in source pixels.
  """
  cx, cy, w, h = example['search_box'].astype(float) * side
  scale = w / seq_box[2]
  ys, xs = np.nonzero(_magenta(example['search']).reshape(side, side))
  for lo, hi, centre, size in (
      (xs.min(), xs.max() + 1, cx, w),
      (ys.min(), ys.max() + 1, cy, h),
  ):
    if centre - size / 2 >= 0 and centre + size / 2 <= side:
      shift = ((lo + hi) / 2 - centre) / scale
      grow = ((hi - lo) - size) / scale
      assert -0.25 <= shift <= 1.25 and -0.25 <= grow <= 1.0 + 2 / scale, (
          shift,
          grow,
      )
  box = np.clip([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 0, side)
  inner = np.round(
      box
      + 1.0 * np.array([1, 1, -1, -1])  # + the shift and the edge ramp
      + scale * np.array([1.5, 1.5, -0.5, -0.5])
  ).astype(int)
  patch = example['search'][inner[1] : inner[3], inner[0] : inner[2]]
  assert patch.size and _magenta(patch).all()


def test_crop_normalised_box_lands_on_the_object(squares, tokenizer):
  maker = _maker(squares, tokenizer, gray_prob=0.0)
  side, seen = maker.params.search_size, {True: 0, False: 0}
  for index in range(48):
    spec = maker.sample(index)
    example = maker(index)
    seen[bool(example['visible'])] += 1
    template = example['template']
    assert template.shape == (128, 128, 3) and example['search'].shape == (
        256,
        256,
        3,
    )
    assert _magenta(
        template[62:66, 62:66]
    ).all()  # template: target at the centre
    if example['visible']:
      _check_box_on_object(example, squares.boxes[spec.search], side)
    else:  # absent search frame: no target in the crop, box zeros
      assert not squares.visible[spec.search] and 10 <= spec.search < 15
      assert not _magenta(example['search']).any()
      np.testing.assert_array_equal(
          example['search_box'], np.zeros(4, np.float32)
      )
  assert seen[True] > 30 and seen[False] >= 1


def test_invalid_boxes_are_never_sampled(squares):
  usable = squares.visible | absent_mask(squares)
  assert not usable[20] and not usable[21] and usable[10:15].all()
  assert squares.visible.sum() == 23
  for seed in range(300):
    t, s = sample_frame_ids(
        np.random.default_rng(seed), squares.visible, usable, 3
    )
    assert (
        squares.visible[t]
        and usable[s]
        and -3 <= s - t < 3
        and s not in (20, 21)
    )
  visible, usable = np.zeros(30, bool), np.zeros(30, bool)
  visible[0], usable[20] = (
      True,
      True,
  )  # only reachable once the gap has grown by 5 x 4
  assert sample_frame_ids(np.random.default_rng(0), visible, usable, 3) == (
      0,
      20,
  )


def test_datasets_are_drawn_by_their_ratios(squares):
  sampler = PairSampler(
      [
          DatasetPool('a', [squares], 3.0),
          DatasetPool('b', [squares], 1.0),
          DatasetPool('c', [squares], 0.0),
      ]
  )
  drawn = [sampler.sample(np.random.default_rng(i)).dataset for i in range(800)]
  assert 0.7 < drawn.count('a') / 800 < 0.8 and 'c' not in drawn


def test_grayscale_is_joint_and_text_is_tokenised(squares, tokenizer):
  example = _maker(squares, tokenizer, gray_prob=1.0)(0)
  for key in ('template', 'search'):
    img = example[key].astype(int)
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(
        img[..., 1], img[..., 2]
    )
  assert (
      example['text_ids'][0] == tokenizer.cls_id
      and example['text_mask'].sum() > 3
  )


def test_batches_shapes_and_grid_png(syn_root, tmp_path):
  config = _config(syn_root)
  batch = next(pairs.make_train_iterator(config))
  b, tz, sx, tl = (
      config.train.batch_size,
      config.model.template_size,
      config.model.search_size,
      config.text.max_len,
  )
  expected = {
      'template': ((b, tz, tz, 3), np.uint8),
      'search': ((b, sx, sx, 3), np.uint8),
      'search_box': ((b, 4), np.float32),
      'visible': ((b,), np.bool_),
      'text_ids': ((b, tl), np.int32),
      'text_mask': ((b, tl), np.int32),
  }
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected
  path = str(tmp_path / 'grid.png')
  grid = pairs.save_batch_grid(batch, path)
  assert os.path.isfile(path) and grid.shape == (b * sx, tz + sx, 3)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _equal(a, b):
  return all(np.array_equal(a[k], b[k]) for k in pairs.KEYS)


def test_same_seed_same_batches_and_resume(syn_root):
  config = _config(syn_root)
  run = _take(pairs.make_train_iterator(config), 3)
  again = _take(pairs.make_train_iterator(config), 3)
  assert all(_equal(x, y) for x, y in zip(run, again))
  assert not _equal(run[0], run[1])
  resumed = next(pairs.make_train_iterator(config, start_step=2))
  assert _equal(resumed, run[2])
  config.seed = 1
  assert not _equal(next(pairs.make_train_iterator(config)), run[0])


def test_processes_get_disjoint_samples_and_local_batches(syn_root):
  config = _config(syn_root)
  names = []
  for p in (0, 1):
    maker = pairs.make_pair_maker(config, p, 2)
    names.append({maker.sample(i).sequence.name for i in range(40)})
  assert names[0] and names[1] and not names[0] & names[1]
  batches = [next(pairs.make_train_iterator(config, p, 2)) for p in (0, 1)]
  assert batches[0]['search'].shape[0] == config.train.batch_size // 2
  assert not _equal(*batches)
  with pytest.raises(ValueError, match='not divisible'):
    pairs.make_train_iterator(config, 0, 3)


def test_missing_roots_named_in_one_error(tmp_path):
  config = _config('', train_datasets='synthetic,lasot')
  config.data.roots.lasot = str(tmp_path / 'nope')
  with pytest.raises(FileNotFoundError) as info:
    pairs.make_train_iterator(config)
  message = str(info.value)
  assert '--config.data.roots.synthetic=DIR' in message
  assert '--config.data.roots.lasot=DIR' in message and 'nope' in message
  with pytest.raises(ValueError, match='unknown training dataset'):
    pairs.make_train_iterator(_config('', train_datasets='imagenet'))


def test_pad_colour_skipped_only_where_nothing_is_padded():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
  inside = 0
  for _ in range(400):
    box = np.concatenate(
        [
            rng.uniform(-30, 170, 1),
            rng.uniform(-30, 130, 1),
            rng.uniform(1, 40, 2),
        ]
    )
    factor = float(rng.choice([2.0, 4.0]))
    pad = augment._pad_value(image, box, factor)  # pylint: disable=protected-access
    inside += isinstance(pad, float)
    expected = crops.crop_and_map(
        image, box, box, factor, 64, crops.pad_colour(image)
    )
    got = crops.crop_and_map(image, box, box, factor, 64, pad)
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))
  assert 50 < inside < 350


def test_decode_frame_rejects_garbage_and_truncated_jpeg(squares):
  ok, data = cv2.imencode('.jpg', np.full((32, 32, 3), 100, np.uint8))
  data = data.tobytes()
  assert augment.decode_frame(data, 'a.jpg').shape == (32, 32, 3)
  for bad in (b'', b'not a jpeg at all', data[: len(data) // 2]):
    with pytest.raises(augment.FrameError):
      augment.decode_frame(bad, 'a.jpg')


@pytest.fixture()
def corrupt_root(syn_root, tmp_path):
  """A copy of the synthetic set whose first video's frames are all broken."""
  root = str(tmp_path / 'corrupt')
  shutil.copytree(syn_root, root)
  video = os.path.join(
      root, 'VL-SOT230', sorted(os.listdir(os.path.join(root, 'VL-SOT230')))[0]
  )
  for name in os.listdir(os.path.join(video, 'img')):
    path = os.path.join(video, 'img', name)
    with open(path, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:  # half garbage, half truncated
      f.write(b'garbage' if name < '000010' else data[: len(data) // 2])
  return root, video


def test_corrupt_frames_are_counted_and_skipped(corrupt_root):
  root, video = corrupt_root
  maker = pairs.make_pair_maker(_config(root, max_bad_fraction=0.9))
  for index in range(30):
    assert maker(index)['search'].shape == (128, 128, 3)
  stats = maker.accounting.stats()
  assert stats['bad_frames'] >= 1 and stats['frame_reads'] > stats['bad_frames']
  assert all(p.startswith(video) for p in maker.accounting.bad_paths)


def test_too_many_failures_stop_with_a_clear_error(corrupt_root):
  root, _ = corrupt_root
  iterator = pairs.make_train_iterator(_config(root, max_bad_fraction=0.0))
  with pytest.raises(pairs.BadDataError, match='max_bad_fraction'):
    _take(iterator, 10)


def test_dataset_without_usable_sequences_is_a_clear_error(squares):
  short = build_sequence(
      'short', 'squares', squares.frames[:10], squares.boxes[:10]
  )
  with pytest.raises(ValueError, match='no usable sequence'):
    DatasetPool('squares', [short], 1.0)
