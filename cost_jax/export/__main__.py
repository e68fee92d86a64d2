"""python -m cost_jax.export: a trained run or converted weights -> one deployable zip.

    python -m cost_jax.export --workdir=runs/demo --format=stablehlo --out=cost_demo.zip
    python -m cost_jax.export --weights=checkpoints/transt_no_lb.safetensors \\
        --config=configs/cost.py:paper,no_lb --format=onnx --out=transt.onnx.zip

The config is the variant saved with the run's latest checkpoint unless
``--config`` names one.  Errors print one ``error: ... Fix: ...`` line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main"]


class UsageError(Exception):
  """A user error: the message says what is wrong and how to fix it."""


def _parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(
      prog="python -m cost_jax.export", description=__doc__.split("\n")[0]
  )
  ap.add_argument(
      "--workdir",
      default=None,
      help="training run folder (its latest checkpoint in checkpoints/)",
  )
  ap.add_argument(
      "--weights",
      default=None,
      help="converted whole-model weights (cost_jax.convert) instead of a run",
  )
  ap.add_argument(
      "--config",
      default=None,
      help="configs/cost.py:VARIANT (default: the variant the checkpoint saved)",
  )
  ap.add_argument(
      "--format",
      required=True,
      choices=("stablehlo", "onnx"),
      help="stablehlo: jax.export, reloads in JAX; onnx: runs in onnxruntime",
  )
  ap.add_argument("--out", required=True, help="the zip file to write")
  return ap


def _saved_variant(workdir: str) -> str:
  """The variant in WORKDIR/checkpoints/<latest>/config (saved by training)."""
  root = os.path.join(workdir, "checkpoints")
  steps = (
      sorted((int(d) for d in os.listdir(root) if d.isdigit()), reverse=True)
      if os.path.isdir(root)
      else []
  )
  for step in steps:
    path = os.path.join(root, str(step), "config", "metadata")
    if os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        return json.load(f)["variant"]
  raise UsageError(
      f"no checkpoint with a saved config in {root}. Fix: train into this "
      "--workdir first, or pass --weights=FILE with --config=configs/cost.py:VARIANT"
  )


def _config(args):
  from configs import cost

  spec = args.config
  if spec is None:
    if not args.workdir:
      raise UsageError(
          "--weights needs the variant it was converted for. Fix: add "
          "--config=configs/cost.py:VARIANT (e.g. paper,no_lb)"
      )
    return cost.get_config(_saved_variant(args.workdir))
  path, _, variant = spec.partition(":")
  if os.path.normpath(path) != os.path.normpath("configs/cost.py"):
    raise UsageError(
        f"--config={spec}: only configs/cost.py[:VARIANT] is known. Fix: "
        "pass --config=configs/cost.py:VARIANT"
    )
  try:
    return cost.get_config(variant or None)
  except ValueError as err:
    raise UsageError(f"{err} Fix: pass one of the variants it lists") from None


def _variables(config, args):
  from cost_jax.tracking import tracker

  if args.weights:
    return (
        tracker.load_converted_variables(config, args.weights),
        f"converted:{os.path.abspath(args.weights)}",
    )
  return tracker.restore_variables(config, args.workdir)


def run(args) -> dict:
  """Exports as ``args`` say; -> the artefact's export.json."""
  if not (args.workdir or args.weights):
    raise UsageError(
        "nothing to export. Fix: pass --workdir=DIR (a training run) or "
        "--weights=FILE (converted weights)"
    )
  if args.workdir and not os.path.isdir(args.workdir):
    raise UsageError(
        f"--workdir {args.workdir} is not a folder. Fix: give the --workdir "
        "the run was trained with"
    )
  from cost_jax import export as export_lib
  from cost_jax.tracking.engine import Engine

  config = _config(args)
  try:
    variables, info = _variables(config, args)
  except (FileNotFoundError, ValueError) as err:
    raise UsageError(
        f'{str(err).rstrip(".")}. Fix: check --workdir / --weights and '
        "--config (the variant the weights were trained with)"
    ) from None
  return export_lib.export(
      Engine(config, variables), args.format, args.out, info
  )


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  try:
    meta = run(args)
  except UsageError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  except ImportError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  size = os.path.getsize(args.out) / 2**20
  print(
      f"wrote {args.out} ({meta['format']}, variant {meta['variant']}, "
      f"{', '.join(meta['graphs'])}; {size:.1f} MiB)"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
