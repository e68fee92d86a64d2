"""`--mode=evaluate` over several datasets and checkpoints (cost_jax.evaluate_many): one
table per dataset, one summary.md, and a re-run that tracks only what is missing.
"""

import io
import os

import jax
import numpy as np
import pytest

from cost_jax import evaluate, evaluate_many
from input_pipeline import synthetic
from tests import tolerances
from tests.test_tracker import save_checkpoint

TRACKERS = ("cost-step1", "cost-step2", "ncc", "static")


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
  """Two tiny synthetic sets: VL-SOT500 layout (2 videos) and LaSOT layout (2 test videos)."""
  base = tmp_path_factory.mktemp("multi_data")
  synthetic.generate(
      str(base / "vlsot"),
      "vlsot500",
      num_videos=2,
      frames=5,
      size=(96, 72),
      seed=11,
  )
  synthetic.generate(
      str(base / "lasot"),
      "lasot",
      num_videos=4,
      frames=5,
      size=(96, 72),
      seed=12,
      test_fraction=0.5,
  )
  return {"vlsot500": str(base / "vlsot"), "lasot": str(base / "lasot")}


def sweep_config(smoke_model, roots, steps="all"):
  config = smoke_model[0].copy_and_resolve_references()
  config.data.eval_dataset = "vlsot500,lasot"
  config.data.roots.vlsot500 = roots["vlsot500"]
  config.data.roots.lasot = roots["lasot"]
  config.track.steps = steps
  config.track.batch_sequences = 2
  return config


@pytest.fixture(scope="module")
def workdir(smoke_model, tmp_path_factory):
  """A run with checkpoints 1 and 2 (different weights)."""
  config, _, _, variables = smoke_model
  path = str(tmp_path_factory.mktemp("multi_run"))
  save_checkpoint(path, config, variables, step=1)
  moved = dict(
      variables, params=jax.tree.map(lambda p: p * 1.5, variables["params"])
  )
  save_checkpoint(path, config, moved, step=2)
  return path


def test_two_datasets_two_checkpoints_then_resume(
    smoke_model, roots, workdir, capsys
):
  config = sweep_config(smoke_model, roots)
  assert evaluate_many.is_many(config)
  out = evaluate.evaluate(config, workdir)
  for tag in ("vlsot500-test", "lasot-test"):
    table = open(
        os.path.join(workdir, "eval", tag, "table.txt"), encoding="utf-8"
    ).read()
    for tracker in TRACKERS:
      assert f"\n{tracker} " in table, table
    assert "batched x2" in table  # two sequences per step
    assert sorted(out["speed"][tag]) == ["cost-step1", "cost-step2"]
  summary = open(out["outputs"]["summary"], encoding="utf-8").read()
  assert (
      "| tracker | vlsot500-test AUC | lasot-test AUC | mean |" in summary
  ), summary
  for tracker in TRACKERS:
    assert f"| {tracker} |" in summary
  best = out["summary"]["best"]
  assert best in ("cost-step1", "cost-step2") and f"**{best}**" in summary
  means = {t: out["summary"]["trackers"][t]["mean"] for t in TRACKERS[:2]}
  assert means[best] == max(means.values())
  # The mean is the mean of the two datasets' AUC (in %), as printed with 1 decimal.
  for tracker, row in out["summary"]["trackers"].items():
    scores = list(row["scores"].values())
    assert row["mean"] == pytest.approx(np.mean(scores), abs=1e-9), tracker
  assert "best:" in capsys.readouterr().out

  # Stopped before one sequence of step 2 on LaSOT was written: only it is tracked again.
  results = os.path.join(workdir, "eval", "lasot-test", "results", "cost-step2")
  gone = sorted(
      n for n in os.listdir(results) if n.endswith(".txt") and "_" not in n
  )[0]
  before = open(os.path.join(results, gone), encoding="utf-8").read()
  os.remove(os.path.join(results, gone))
  again = evaluate.evaluate(config, workdir)
  assert list(again["speed"]["vlsot500-test"]) == []
  assert list(again["speed"]["lasot-test"]) == ["cost-step2"]
  assert again["speed"]["lasot-test"]["cost-step2"]["tracked"] == [gone[:-4]]
  # Re-tracked alone, i.e. by a program of another batch size: XLA may sum
  # in another order, so the boxes agree within the smoke network's float32
  # bound (tests/tolerances.py), not to the last printed digit.
  after = np.loadtxt(os.path.join(results, gone), delimiter=",", ndmin=2)
  previous = np.loadtxt(io.StringIO(before), delimiter=",", ndmin=2)
  tol = tolerances.smoke_tracking_px(previous, config.data.search_factor)
  np.testing.assert_allclose(after, previous, atol=tol)
  assert again["summary"]["trackers"] == out["summary"]["trackers"]
  table = open(
      os.path.join(workdir, "eval", "lasot-test", "table.txt"), encoding="utf-8"
  ).read()
  assert (
      "single-stream" not in table.split("cost-step2")[1].split("\n")[0]
  )  # still batched x2


def test_steps_and_datasets_are_checked(smoke_model, roots, workdir):
  assert not evaluate_many.is_many(
      smoke_model[0]
  )  # one dataset, the latest checkpoint
  assert evaluate_many.parse_steps("latest", [3, 1, 2]) == [3]
  assert evaluate_many.parse_steps("all", [3, 1, 2]) == [1, 2, 3]
  assert evaluate_many.parse_steps("2, 1", [1, 2, 3]) == [1, 2]
  with pytest.raises(
      FileNotFoundError, match=r"no checkpoint step 5 \(there are: 1, 2\)"
  ):
    evaluate.evaluate(sweep_config(smoke_model, roots, "5"), workdir)
  with pytest.raises(ValueError, match="steps='first'. Fix: use latest, all"):
    evaluate.evaluate(sweep_config(smoke_model, roots, "first"), workdir)
  config = sweep_config(smoke_model, roots)
  config.data.eval_dataset = "vlsot500,lasott"
  with pytest.raises(ValueError, match="unknown dataset 'lasott'"):
    evaluate.evaluate(config, workdir)
  config.data.eval_dataset = "vlsot500,tnl2k"
  with pytest.raises(FileNotFoundError, match="roots.tnl2k"):
    evaluate.evaluate(config, workdir)
  config.data.eval_dataset = "vlsot500,vlsot500"
  with pytest.raises(ValueError, match="list each dataset once"):
    evaluate.evaluate(config, workdir)
  config.data.eval_dataset = "vlsot500,lasot"
  config.data.eval_root = roots["lasot"]
  with pytest.raises(ValueError, match="eval_root names one folder"):
    evaluate.evaluate(config, workdir)
