"""Export for deployment (cost_jax.export): the artefacts track like the JAX tracker.

A seeded, untrained `smoke` run is exported by the command a user runs; 50
frames of a moving square are tracked by the JAX `Tracker` and by the same
host code driving the artefact's graphs (reloaded StableHLO; onnxruntime),
and by the onnxruntime loop of docs/export.md.  Boxes must agree within
TOL_PX.
"""

import os
import re

import cv2
import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import cost
from cost_jax.checkpointing import config_to_dict
from cost_jax.export import __main__ as cli
from cost_jax.export import formats, runtime
from cost_jax.export.bundle import Bundle
from cost_jax.models import factory
from cost_jax.tracking.tracker import Tracker
from tests.test_docs import BOX, triangle_frames, write_clip
from tests.test_tracker import save_checkpoint, square_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESCRIPTION = "the white square"
# Both runtimes compute the same float32 graph; only the kernels' summation
# order differs (onnxruntime), so network outputs differ by ~1e-6 relative.
# A decoded coordinate is bbox * s_x with s_x <= 4 * sqrt(2) * 200 px here:
# ~1e-3 px at most, unless an argmax tie flips (which this bound would catch).
TOL_PX = 0.01


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  """A `smoke` training run: one checkpoint of seeded random weights."""
  workdir = str(tmp_path_factory.mktemp("export_run"))
  save_random_run(workdir, cost.get_config("smoke"))
  return workdir


def save_random_run(workdir, config):
  """One checkpoint (step 1) of seeded random weights, with ``config``."""
  model, spec = factory.create_model(config)
  variables = factory.init_variables(model, spec, jax.random.key(3))
  save_checkpoint(workdir, config, variables, step=1)


@pytest.fixture(scope="module")
def video():
  frames, boxes = square_video(24, 50, seed=4, noise=120)
  return frames, boxes[0]


@pytest.fixture(scope="module")
def jax_boxes(run_dir, video):
  frames, box = video
  tracker = Tracker.from_workdir(cost.get_config("smoke"), run_dir)
  tracker.initialize(frames[0], box, DESCRIPTION)
  return np.stack([box] + [tracker.track(f)[0] for f in frames[1:]])


def export(run_dir, tmp_path, fmt):
  out = str(tmp_path / f"smoke_{fmt}.zip")
  assert (
      cli.main([f"--workdir={run_dir}", f"--format={fmt}", f"--out={out}"]) == 0
  )
  return out


def track_with_artefact(path, frames, box):
  bundle = Bundle(path)
  tracker = Tracker(
      runtime.config_of(bundle), None, engine=runtime.engine(bundle)
  )
  tracker.initialize(frames[0], box, DESCRIPTION)
  return np.stack([box] + [tracker.track(f)[0] for f in frames[1:]])


def assert_same_track(name, got, want):
  diff = np.abs(got - want).max()
  moved = np.abs(np.diff(want[:, :2], axis=0)).max()
  print(f"EXPORT {name}: {len(want)} frames, max|box diff| {diff:.2e} px")
  assert moved > 1.0  # the boxes really move: the decode is exercised
  assert diff <= TOL_PX


@pytest.mark.parametrize("fmt", ["stablehlo", "onnx"])
def test_artefact_tracks_like_the_jax_tracker(
    fmt, run_dir, video, jax_boxes, tmp_path
):
  if fmt == "onnx":
    pytest.importorskip("jax2onnx")
    pytest.importorskip("onnxruntime")
  path = export(run_dir, tmp_path, fmt)
  meta = Bundle(path).meta
  assert meta["variant"] == "smoke" and set(meta["graphs"]) == {
      "template",
      "text",
      "step",
  }
  assert_same_track(fmt, track_with_artefact(path, *video), jax_boxes)


def test_artefact_steps_the_redetection_tiles_like_jax(
    run_dir, video, tmp_path
):
  # Re-detection (track.redetect_tiles) runs the step on 8 tiles at once with
  # the sequence's caches repeated: the artefact must accept batch 8 and the
  # repeated caches must be built without tracing its (non-JAX) functions.
  # (Whole tracks are not compared: with random weights every tile scores
  # ~0.5, and rounding would flip which tile wins.)
  frames, box = video
  config = cost.get_config("smoke")
  config.track.update(motion="velocity", redetect_tiles=3, lost_score=0.5)
  bundle = Bundle(export(run_dir, tmp_path, "stablehlo"))
  engines = [
      Tracker.from_workdir(config, run_dir).engine,
      runtime.engine(bundle),
  ]
  # (the artefact's own config keeps the exported run's: no re-detection)
  offsets = engines[0].redetect_offsets
  rows = []
  for e in engines:
    state, z = e.start(frames[0], box)
    caches = e.batch_caches(*e.encode(z, e.tokenize(DESCRIPTION)), 8)
    side = e.search_side(state)
    pairs = [e.search_crop(frames[1], state, o * side) for o in offsets]
    crops, geometry = (np.stack(x) for x in zip(*pairs))
    rows.append(np.asarray(e.step(e.variables, crops, *caches, geometry)))
  assert rows[0].shape == (8, 5)
  np.testing.assert_allclose(rows[1][:, :4], rows[0][:, :4], atol=TOL_PX)
  # Probabilities in [0, 1] off by the network's ~1e-6 relative difference.
  np.testing.assert_allclose(rows[1][:, 4], rows[0][:, 4], atol=1e-5)


def test_artefact_keeps_the_runs_tracker_settings(tmp_path):
  """The config saved with the checkpoint (not the variant's defaults) goes
  into the artefact, so its runtime tracks with the run's settings."""
  config = cost.get_config("smoke")
  config.track.size_lr, config.track.window_influence = 0.5, 0.3
  run = str(tmp_path / "run")
  save_random_run(run, config)
  restored = runtime.config_of(Bundle(export(run, tmp_path, "stablehlo")))
  assert (restored.track.size_lr, restored.track.window_influence) == (0.5, 0.3)
  # As JSON data (the saved config's tuples are lists).
  assert restored.model.to_dict() == config_to_dict(config)["model"]


def test_stablehlo_step_has_a_symbolic_batch(run_dir, tmp_path):
  run = runtime.functions(Bundle(export(run_dir, tmp_path, "stablehlo")))
  rng = np.random.default_rng(0)
  z = rng.integers(0, 255, (3, 64, 64, 3), np.uint8)
  ids = rng.integers(1000, 2000, (3, 20)).astype(np.int32)
  arrays = dict(
      run["template"]({"template": z}),
      **run["text"]({"ids": ids, "mask": np.ones_like(ids)}),
  )
  arrays["search"] = rng.integers(0, 255, (3, 128, 128, 3), np.uint8)
  arrays["geometry"] = np.array([[60, 50, 90, 200, 160]] * 3, np.float32)
  batched = run["step"](arrays)["box"]
  one = run["step"](
      {k: v if k == "template_pos" else v[1:2] for k, v in arrays.items()}
  )
  assert batched.shape == (3, 5)
  # Another batch size re-blocks XLA's float32 sums: ~1e-7 relative per sum.
  np.testing.assert_allclose(one["box"][0], batched[1], rtol=1e-5, atol=1e-6)


def test_window_max_pool_equals_flax_max_pool():
  x = np.random.default_rng(1).normal(size=(2, 9, 12, 4)).astype(np.float32) - 3
  for padding in (((1, 1), (1, 1)), "VALID", ((0, 1), (2, 0))):
    want = nn.max_pool(x, (3, 3), (2, 2), padding=padding)
    np.testing.assert_array_equal(
        formats.window_max_pool(x, (3, 3), (2, 2), padding), want
    )


def docs_loop():
  with open(os.path.join(ROOT, "docs", "export.md"), encoding="utf-8") as f:
    blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
  assert len(blocks) == 1, "docs/export.md should hold one ```python loop"
  return blocks[0]


def test_docs_onnxruntime_loop(run_dir, tmp_path, monkeypatch, capsys):
  pytest.importorskip("jax2onnx")
  pytest.importorskip("onnxruntime")
  write_clip(str(tmp_path), triangle_frames(12))
  capture = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
  decoded = [
      cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
      for _, f in iter(capture.read, (False, None))
  ]
  os.replace(export(run_dir, tmp_path, "onnx"), tmp_path / "cost.onnx.zip")
  monkeypatch.chdir(tmp_path)
  exec(compile(docs_loop(), "docs/export.md", "exec"), {})  # noqa: S102
  printed = [
      line
      for line in capsys.readouterr().out.splitlines()
      if line.startswith("[")
  ]
  got = np.array([line[1 : line.index("]")].split() for line in printed], float)
  tracker = Tracker.from_workdir(cost.get_config("smoke"), run_dir)
  tracker.initialize(decoded[0], BOX, "the red triangle moving left")
  want = np.stack([tracker.track(f)[0] for f in decoded[1:]])
  assert got.shape == want.shape == (11, 4)
  # numpy prints 8 significant digits: < 1e-4 px rounding for boxes below 1000 px.
  np.testing.assert_allclose(got, want, atol=TOL_PX)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--format=onnx", "--out=x.zip"], "nothing to export"),
        (
            ["--workdir=/no/such/run", "--format=stablehlo", "--out=x.zip"],
            "is not a folder",
        ),
        (
            ["--weights=w.safetensors", "--format=onnx", "--out=x.zip"],
            "needs the variant",
        ),
        (
            [
                "--weights=/no/w.safetensors",
                "--config=configs/cost.py:smoke",
                "--format=onnx",
                "--out=x.zip",
            ],
            "not found",
        ),
    ],
)
def test_user_errors_name_the_fix(argv, expected, capsys):
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert (
      err.startswith("error: ")
      and expected in err
      and "Fix: " in err
      and "\n" not in err
  )
