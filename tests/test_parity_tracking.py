"""Tracking parity: the JAX tracker vs torch_reference's TransT tracker loop.

The same seeded weights reach both through the converter files a user would
use (reference state_dict -> `python -m cost_jax.convert import` ->
`Tracker.from_converted`); a 100-frame synthetic video with a small moving
target, a look-alike distractor and camera shake; every box within the
float32 bound of tests.tolerances.smoke_tracking_px.
"""

import cv2
import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

import jax  # noqa: E402

from configs import cost  # noqa: E402
from cost_jax import text as text_lib  # noqa: E402
from cost_jax.convert import __main__ as cli  # noqa: E402
from cost_jax.tracking.tracker import Tracker  # noqa: E402
from torch_reference import parity, tracker as ref_tracker  # noqa: E402
from tests import tolerances  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def synthetic_video(frames=100, height=144, width=192, seed=0):
  """RGB uint8 frames and the first box (x, y, w, h) of a red 10x8 target."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(40, 220, (6, 8, 3)).astype(np.float32)
  scene = cv2.resize(
      coarse, (width + 40, height + 40), interpolation=cv2.INTER_CUBIC
  )
  out, boxes = [], []
  for t in range(frames):
    dx, dy = (int(v) for v in rng.integers(0, 6, 2))  # camera shake
    img = scene[dy : dy + height, dx : dx + width].copy()
    x = 30 + 120 * (0.5 + 0.5 * np.sin(t / 15))
    y = 40 + 50 * (0.5 + 0.5 * np.cos(t / 11))
    img[int(y) : int(y) + 8, int(x) : int(x) + 10] = (220, 30, 30)
    img[
        int(110 - y / 3) : int(110 - y / 3) + 8, int(x / 2) : int(x / 2) + 10
    ] = (
        30,
        30,
        220,
    )  # look-alike distractor
    out.append(
        np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    )
    boxes.append((int(x), int(y), 10, 8))
  return out, boxes[0]


def test_jax_tracker_follows_the_reference_tracker(tmp_path):
  config = cost.get_config('smoke')
  bert = text_lib.load_bert_config(text_lib.bundled_minilm_path())
  ref, _, spec = parity.build_pair(config, bert, seed=11)
  torch.save(ref.state_dict(), tmp_path / 'reference.pth')
  weights = tmp_path / 'cost_smoke.safetensors'
  assert (
      cli.main(
          [
              'import',
              '--input',
              str(tmp_path / 'reference.pth'),
              '--output',
              str(weights),
              '--config',
              'configs/cost.py:smoke',
          ]
      )
      == 0
  )

  frames, init_box = synthetic_video()
  tok = text_lib.Tokenizer(text_lib.bundled_minilm_path(), spec.text_len)
  ids, mask = tok.encode('the red box moving right')
  want = ref_tracker.track_sequence(
      ref_tracker.ReferenceTracker(ref, config), frames, init_box, ids, mask
  )

  with jax.default_matmul_precision('highest'):
    tracker = Tracker.from_converted(config, str(weights))
    tracker.initialize(frames[0], init_box, tokens=(ids[None], mask[None]))
    got = [np.asarray(init_box, np.float64)]
    got += [tracker.track(frame)[0] for frame in frames[1:]]
  got = np.stack(got)
  diff = np.abs(got - want).max(axis=1)
  moved = np.abs(np.diff(want[:, :2], axis=0)).max()
  tol = tolerances.smoke_tracking_px(want, config.data.search_factor)
  print(
      f'PARITY tracking 100 frames     max|diff| {diff.max():.3e} px  '
      f'(frame {int(diff.argmax())}; reference boxes move up to '
      f'{moved:.1f} px a frame; bound {tol:.3g} px)'
  )
  assert moved > 1.0  # The comparison is not between two frozen boxes.
  assert diff.max() <= tol, np.nonzero(diff > tol)[0][:5]
