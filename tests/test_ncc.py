"""The NCC template-matching baseline tracks a translating square exactly."""

import numpy as np

from cost_jax.tracking import ncc


def square_video(num_frames=20, step=(3, 2), size=10, shape=(120, 160)):
  rng = np.random.default_rng(0)
  background = rng.integers(0, 120, shape + (3,), dtype=np.uint8)
  pattern = rng.integers(130, 255, (size, size, 3), dtype=np.uint8)
  frames, boxes = [], []
  for t in range(num_frames):
    x, y = 20 + step[0] * t, 15 + step[1] * t
    frame = background.copy()
    frame[y : y + size, x : x + size] = pattern
    frames.append(frame)
    boxes.append((x, y, size, size))
  return frames, np.asarray(boxes, np.float64)


def test_tracks_a_translating_square_exactly():
  frames, truth = square_video()
  boxes, times = ncc.track(frames, truth[0])
  np.testing.assert_array_equal(boxes, truth)  # Integer motion: exact.
  assert times.shape == (len(frames),)


def test_fast_motion_beyond_the_window_is_lost():
  # A jump of 40 px > half the 3 * 10 + 10 = 40 px window: the baseline's
  # search area is bounded, so it cannot follow (it is a baseline).
  frames, truth = square_video(num_frames=3, step=(40, 0))
  boxes, _ = ncc.track(frames, truth[0])
  assert not np.array_equal(boxes[1], truth[1])


def test_unreadable_frame_keeps_the_last_box():
  frames, truth = square_video(num_frames=6)
  frames[3] = None
  boxes, _ = ncc.track(frames, truth[0])
  np.testing.assert_array_equal(boxes[3], boxes[2])
  np.testing.assert_array_equal(boxes[5], truth[5])


def test_subpixel_initial_box_is_kept_for_a_still_target():
  frames, truth = square_video(num_frames=4, step=(0, 0))
  init = truth[0] + np.array([0.3, -0.2, 0.0, 0.0])
  boxes, _ = ncc.track(frames, init)
  np.testing.assert_allclose(boxes, np.repeat(init[None], 4, 0), atol=1e-9)
