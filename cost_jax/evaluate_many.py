"""`--mode=evaluate` over several datasets and checkpoints: what to run after training.

    python main.py --config=configs/cost.py --workdir=runs/cost --mode=evaluate \\
        --config.data.eval_dataset=lasot,tnl2k,otb99_lang --config.track.steps=all \\
        --config.data.roots.lasot=... --config.data.roots.tnl2k=... ...

``config.data.eval_dataset`` lists datasets (``name`` or ``name:split``;
the split defaults to ``config.data.eval_split``), each read from
``config.data.roots.<name>``.  ``config.track.steps`` picks the checkpoints
of ``WORKDIR/checkpoints``: ``latest``, ``all`` or steps ``N,M``.  Each
dataset gets what a single evaluation writes (``WORKDIR/eval/<dataset>-
<split>/``: results, ``table.txt`` with one row per checkpoint, named
``<tracker_name>-step<N>``, and the static and NCC baselines, metrics.json,
plots, speed.json); ``WORKDIR/eval/summary.md`` (and ``summary.json``)
puts the main score of every checkpoint on every dataset side by side, with
their mean and the best checkpoint.  Every sequence's results are written
as it finishes: the same command again tracks only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os

from etils import epath

from cost_jax import checkpointing
from cost_jax import errors
from cost_jax import evaluate_steps
from cost_jax import weights
from cost_jax.evaluation import results_io
from cost_jax.tracking import bad_frames
from cost_jax.tracking import runner
from cost_jax.tracking.engine import Engine
from input_pipeline.readers import DATASETS

__all__ = [
    "is_many",
    "evaluate_many",
    "parse_datasets",
    "parse_steps",
    "summary_table",
]

STEPS = ("latest", "all")


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One evaluation set: its name, split and root, and where its outputs go."""

  name: str
  split: str
  root: str
  out: str

  @property
  def tag(self) -> str:
    return f"{self.name}-{self.split}"


def is_many(config) -> bool:
  """Several datasets, or checkpoints other than the latest."""
  return (
      "," in config.data.eval_dataset
      or ":" in config.data.eval_dataset
      or str(config.track.get("steps", "latest")).strip() != "latest"
  )


def parse_datasets(config, workdir) -> list[Dataset]:
  """The datasets of ``config.data.eval_dataset`` ('a,b:split'), roots checked."""

  entries = [
      e.strip() for e in config.data.eval_dataset.split(",") if e.strip()
  ]
  if len(entries) > 1 and config.data.get("eval_root", ""):
    raise errors.InvalidValue(
        "--config.data.eval_root names one folder but eval_dataset lists "
        f"{len(entries)} datasets",
        "set --config.data.roots.<name> for each dataset instead",
    )
  datasets = []
  for entry in entries:
    name, _, split = entry.partition(":")
    if name not in DATASETS:
      raise errors.InvalidValue(
          f"--config.data.eval_dataset: unknown dataset {name!r}",
          f'use names from {", ".join(sorted(DATASETS))}, comma-separated',
      )
    name, root = evaluate_steps.dataset_root(config, workdir, name)
    if name != "synthetic" and not os.path.isdir(root):
      raise errors.NotFound(
          f"the root of dataset {name!r}, {root}, does not exist",
          f"set --config.data.roots.{name} to its folder",
      )
    split = split or config.data.eval_split
    datasets.append(
        Dataset(name, split, root, evaluate_steps.out_dir(workdir, name, split))
    )
  if not datasets or len({d.tag for d in datasets}) != len(datasets):
    raise errors.InvalidValue(
        f"--config.data.eval_dataset={config.data.eval_dataset!r}",
        "list each dataset once, e.g. lasot,tnl2k,got10k:val",
    )
  return datasets


def parse_steps(text: str, available) -> list[int]:
  """The checkpoint steps of ``config.track.steps`` among ``available`` (sorted)."""
  text = str(text).strip()
  available = sorted(available)
  if text in STEPS:
    return available[-1:] if text == "latest" else available
  try:
    steps = sorted({int(s) for s in text.split(",") if s.strip()})
  except ValueError:
    steps = []
  if not steps:
    raise errors.InvalidValue(
        f"--config.track.steps={text!r}",
        "use latest, all, or checkpoint steps such as 1000,2000",
    )
  missing = [s for s in steps if s not in available]
  if missing:
    raise errors.NotFound(
        f'no checkpoint step {", ".join(map(str, missing))} (there are: '
        f'{", ".join(map(str, available)) or "none"})',
        "pick steps from that list, or use --config.track.steps=all",
    )
  return steps


def _checkpoints(config, workdir) -> list:
  """[(step or None for converted weights, tracker name, weights description)]."""
  name = config.track.tracker_name
  available = weights.checkpoint_steps(workdir)
  text = str(config.track.get("steps", "latest")).strip()
  if not available:
    if text != "latest":
      raise errors.NotFound(
          f"--config.track.steps={text} needs checkpoints, and "
          f"{checkpointing.checkpoints_dir(workdir)} has none",
          "train first, or evaluate converted weights with steps=latest",
      )
    _, info = weights.load_weights(config, workdir)
    return [(None, name, info)]
  steps = parse_steps(text, available)
  named = text != "latest"
  return [
      (
          step,
          f"{name}-step{step}" if named else name,
          weights.checkpoint_info(workdir, step),
      )
      for step in steps
  ]


def _pending(config, datasets, sequences, tracker_name: str, info: str) -> bool:
  """Whether any dataset has sequences without results of this checkpoint."""

  for d in datasets:
    folder = runner.check_manifest(
        os.path.join(d.out, "results"),
        tracker_name,
        evaluate_steps.fingerprint(config, info),
    )
    if runner.pending_sequences(folder, sequences[d.tag]):
      return True
  return False


def _track_checkpoint(
    config, workdir, datasets, sequences, checkpoint, reports
) -> None:
  """Tracks every dataset with one checkpoint (loaded only if something is missing)."""

  step, tracker_name, info = checkpoint
  if not _pending(config, datasets, sequences, tracker_name, info):
    logging.info("%s: every dataset already tracked", tracker_name)
    return
  try:
    if step is None:
      variables, _ = weights.load_weights(config, workdir)
    else:
      variables, _ = weights.restore_variables(config, workdir, step)
  except Exception as e:  # pylint: disable=broad-except
    if step is None or not checkpointing.is_read_failure(e):
      raise
    logging.warning(
        "checkpoint step %d is unreadable (%s); it is skipped", step, e
    )
    return
  engine = Engine(config, variables)
  for d in datasets:
    report = evaluate_steps.track_model(
        config,
        engine,
        sequences[d.tag],
        os.path.join(d.out, "results"),
        tracker_name,
        info,
    )
    if report["tracked"]:
      reports[d.tag][tracker_name] = report


def _main_score(metrics: dict) -> tuple[str, str]:
  """(column name, metrics key) of a table's first score: AO for GOT-10k, else AUC."""
  return ("AO", "ao") if metrics["protocol"] == "got10k" else ("AUC", "auc")


def summary_table(datasets, metrics_by_tag: dict, trackers) -> tuple[str, dict]:
  """summary.md text and its data: ``trackers`` x datasets (main score, %) and the mean."""
  rows, header = {}, ["tracker"]
  for d in datasets:
    column, key = _main_score(metrics_by_tag[d.tag])
    header.append(f"{d.tag} {column}")
    for t in trackers:
      value = (
          metrics_by_tag[d.tag]["trackers"]
          .get(t, {})
          .get("overall", {})
          .get(key)
      )
      rows.setdefault(t, []).append(
          None if value is None else 100.0 * float(value)
      )
  header.append("mean")
  data = {
      t: {
          "scores": dict(zip(header[1:-1], v)),
          "mean": (
              sum(v) / len(v)
              if all(x is not None and math.isfinite(x) for x in v)
              else None
          ),
      }
      for t, v in rows.items()
  }
  lines = [
      "| " + " | ".join(header) + " |",
      "|---" + "|---:" * (len(header) - 1) + "|",
  ]
  for t in trackers:
    cells = [_pct(v) for v in rows[t]] + [_pct(data[t]["mean"])]
    lines.append(f"| {t} | " + " | ".join(cells) + " |")
  return "\n".join(lines), data


def _pct(value) -> str:
  return "n/a" if value is None or not math.isfinite(value) else f"{value:.1f}"


def evaluate_many(config, workdir) -> dict:
  """Every checkpoint of ``config.track.steps`` on every dataset; -> {'datasets': {tag:
  metrics}, 'summary': summary.json's data, 'outputs': paths, 'speed': {tag: {tracker:
  runner report}} of what this run tracked}."""

  bad_frames.check_policy(config)
  datasets = parse_datasets(config, workdir)
  sequences = {
      d.tag: evaluate_steps.load_sequences(d.name, d.root, d.split)
      for d in datasets
  }
  checkpoints = _checkpoints(config, workdir)
  reports = {d.tag: {} for d in datasets}
  for checkpoint in checkpoints:
    _track_checkpoint(config, workdir, datasets, sequences, checkpoint, reports)
  names = [
      name
      for _, name, _ in checkpoints  # not the unreadable ones
      if all(
          (epath.Path(d.out) / "results" / name / runner.MANIFEST).is_file()
          for d in datasets
      )
  ]
  metrics = {}
  for d in datasets:
    results_dir = os.path.join(d.out, "results")
    metrics[d.tag] = evaluate_steps.score(
        config, d.name, d.split, sequences[d.tag], results_dir, names, d.out
    )
    _update_speed(os.path.join(d.out, "speed.json"), reports[d.tag])
    print(f'{d.tag}:\n{metrics[d.tag]["table"]}\n')
  out = _write_summary(workdir, datasets, metrics, names, checkpoints)
  out["speed"] = reports
  return out


def _update_speed(path: str, reports: dict) -> None:
  """speed.json: {tracker: runner report}, this run's reports replacing earlier ones."""
  speed = {}
  if epath.Path(path).is_file():
    speed = json.loads(epath.Path(path).read_text())
    if "tracker" in speed:  # a single evaluation's report
      speed = {speed["tracker"]: speed}
  speed.update(reports)
  results_io.atomic_write_text(
      path, json.dumps(speed, indent=1, default=float) + "\n"
  )


def _write_summary(
    workdir, datasets, metrics: dict, names, checkpoints
) -> dict:
  trackers = names + [evaluate_steps.NCC_NAME, evaluate_steps.STATIC_NAME]
  table, data = summary_table(datasets, metrics, trackers)
  scored = [n for n in names if data[n]["mean"] is not None]
  best = max(scored, key=lambda n: data[n]["mean"]) if scored else None
  infos = {name: info for _, name, info in checkpoints}
  column = ", ".join(sorted({_main_score(m)[0] for m in metrics.values()}))
  text = "\n".join(
      [
          "# Evaluation summary",
          "",
          f"{column} in % per dataset (its own protocol; tables with every score in "
          "eval/<dataset>-<split>/table.txt); mean over the datasets.",
          "",
          table,
          "",
          f'Best checkpoint by the mean: **{best}** ({infos.get(best, "")}).'
          if best
          else "No checkpoint has a score on every dataset.",
          "",
      ]
  )
  root = os.path.join(os.fspath(workdir), "eval")
  summary = {
      "trackers": data,
      "best": best,
      "weights": infos,
      "datasets": {
          d.tag: {"root": d.root, "table": os.path.join(d.out, "table.txt")}
          for d in datasets
      },
  }
  results_io.atomic_write_text(os.path.join(root, "summary.md"), text)
  results_io.atomic_write_text(
      os.path.join(root, "summary.json"), json.dumps(summary, indent=1) + "\n"
  )
  print(f"{table}\n\nbest: {best}; wrote {root}/summary.md and summary.json")
  return {
      "datasets": metrics,
      "summary": summary,
      "outputs": {
          "summary": os.path.join(root, "summary.md"),
          "summary_json": os.path.join(root, "summary.json"),
          **{
              f"table_{d.tag}": os.path.join(d.out, "table.txt")
              for d in datasets
          },
      },
  }
