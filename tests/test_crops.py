"""TransT crop geometry (cost_jax.crops) against hand computations and pysot's code
(the PyTorch reference tracker's verbatim copy of pysot `get_subwindow`)."""

import numpy as np
import pytest

from cost_jax import crops


def test_context_crop_side_by_hand():
  # w=10, h=20, f=2: context 15 -> sqrt(25*35) = 29.58 -> 30; f=4: sqrt(55*65) = 59.79 -> 60.
  assert crops.context_crop_side(10, 20, 2.0) == 30.0
  assert crops.context_crop_side(10, 20, 4.0) == 60.0
  assert (
      crops.context_crop_side(32, 32, 4.0) == 128.0
  )  # square: exactly f * side
  sides = crops.context_crop_side(np.array([10, 32]), np.array([20, 32]), 4.0)
  np.testing.assert_array_equal(sides, [60.0, 128.0])


def test_crop_window_by_hand():
  # sz=5, c=3: floor(10 - 3 + 0.5) = 7; sz=4, c=2.5: floor(10.2 - 2.5 + 0.5) = 8.
  np.testing.assert_array_equal(crops.crop_window((10.0, 10.0), 5), [7, 7])
  np.testing.assert_array_equal(crops.crop_window((10.2, 3.9), 4), [8, 1])


def test_interior_crop_is_a_slice():
  image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
  patch = crops.get_subwindow(image, (25.0, 20.0), 11, 11, (0, 0, 0))
  np.testing.assert_array_equal(
      patch, image[14:25, 19:30]
  )  # c = 6: floor(25 - 6 + .5) = 19


def test_padding_colour_is_uint8_truncated():
  image = np.full((10, 10, 3), 7, np.uint8)
  pad = (10.9, 20.999, 255.7)  # numpy writes floats into uint8 by truncation
  patch = crops.get_subwindow(image, (0.0, 0.0), 6, 6, pad)
  np.testing.assert_array_equal(patch[0, 0], [10, 20, 255])
  np.testing.assert_array_equal(patch[5, 5], [7, 7, 7])
  outside = crops.get_subwindow(
      image, (100.0, 100.0), 4, 8, pad
  )  # misses the image
  assert outside.shape == (4, 4, 3) and (outside == [10, 20, 255]).all()


def test_matches_pysot_get_subwindow():
  reference = pytest.importorskip('torch_reference.tracker').get_subwindow
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
  avg = np.mean(image, axis=(0, 1))
  np.testing.assert_array_equal(crops.pad_colour(image), avg)
  for _ in range(300):
    pos = rng.uniform(-30, 90, 2)
    sz = int(rng.integers(1, 120))
    out = int(rng.choice([sz, 16, 64]))
    np.testing.assert_array_equal(
        crops.get_subwindow(image, pos, out, sz, avg),
        reference(image, pos, out, sz, avg),
    )


def test_box_to_crop_by_hand_and_vectorised():
  # centre (12, 23) -> (40-1)/2 = 19.5; scale 2: wh (8, 12); x = 19.5 - 4, y = 19.5 - 6.
  np.testing.assert_allclose(
      crops.box_to_crop([10, 20, 4, 6], (12, 23), 20, 40), [15.5, 13.5, 8, 12]
  )
  rng = np.random.default_rng(2)
  boxes = rng.uniform(1, 50, (7, 4))
  centres = rng.uniform(0, 60, (7, 2))
  sizes = rng.uniform(10, 90, 7)
  batched = crops.box_to_crop(boxes, centres, sizes, 128)
  for i in range(7):
    np.testing.assert_allclose(
        batched[i], crops.box_to_crop(boxes[i], centres[i], sizes[i], 128)
    )


@pytest.mark.parametrize('factor,out_size', [(2.0, 64), (4.0, 128), (4.0, 37)])
def test_crop_and_map_lands_on_the_object(factor, out_size):
  image = np.zeros((120, 160, 3), np.uint8)
  gt = np.array([60.0, 40.0, 20.0, 12.0])
  image[40:52, 60:80] = 255
  jittered = gt + np.array(
      [5.0, -3.0, 4.0, 2.0]
  )  # the crop is centred on another box
  patch, mapped = crops.crop_and_map(image, jittered, gt, factor, out_size)
  assert patch.shape == (out_size, out_size, 3) and patch.dtype == np.uint8
  x, y, w, h = mapped
  inner = patch[
      int(np.ceil(y + 1)) : int(y + h - 1), int(np.ceil(x + 1)) : int(x + w - 1)
  ]
  assert inner.size and (inner == 255).all()
  cx, cy = int(x + w / 2), int(y + h / 2)
  assert (patch[cy, cx] == 255).all()
  outside = np.ones(patch.shape[:2], bool)
  outside[
      max(int(y) - 1, 0) : int(np.ceil(y + h)) + 1,
      max(int(x) - 1, 0) : int(np.ceil(x + w)) + 1,
  ] = 0
  assert (patch[outside] < 255).all()


def test_sample_target_factor_and_errors():
  image = np.zeros((50, 50, 3), np.uint8)
  patch, factor = crops.sample_target(image, [10, 10, 10, 20], 4.0, 128)
  assert patch.shape == (128, 128, 3) and factor == pytest.approx(128 / 60)
  with pytest.raises(ValueError, match='finite'):
    crops.sample_target(image, [10, 10, np.nan, 20], 4.0, 128)
  with pytest.raises(ValueError, match='too small'):
    crops.sample_target(image, [10, 10, -5, -5], 2.0, 64)
  with pytest.raises(ValueError, match='uint8'):
    crops.get_subwindow(image.astype(np.float32), (5, 5), 8, 8, 0)
