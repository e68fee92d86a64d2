"""python -m cost_jax.export: a trained run or converted weights -> one deployable zip.

    python -m cost_jax.export --workdir=runs/demo --format=stablehlo --out=cost_demo.zip
    python -m cost_jax.export --weights=checkpoints/transt_no_lb.safetensors \\
        --config=configs/cost.py:paper,no_lb --format=onnx --out=transt.onnx.zip

The config is the one saved with the run's latest checkpoint unless
``--config`` names a config file (and variant).  Errors print one ``error: ... Fix: ...`` line, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from cost_jax import checkpointing
from cost_jax import config_files
from cost_jax import errors
from cost_jax import weights

__all__ = ["main"]


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
      help="configs/cost.py:VARIANT (default: the config saved with the checkpoint)",
  )
  ap.add_argument(
      "--format",
      required=True,
      choices=("stablehlo", "onnx"),
      help="stablehlo: jax.export, reloads in JAX; onnx: runs in onnxruntime",
  )
  ap.add_argument("--out", required=True, help="the zip file to write")
  return ap


def _config(args):
  """The --config file's config, else the one saved with the run's checkpoints."""
  if args.config:
    path, _, variant = args.config.partition(":")
    try:
      return config_files.load_module(path).get_config(variant or None)
    except ValueError as err:
      raise errors.InvalidValue(
          err, "pass one of the variants it lists"
      ) from None
  if not args.workdir:
    raise errors.InvalidValue(
        "--weights needs the variant it was converted for",
        "add --config=configs/cost.py:VARIANT (e.g. paper,no_lb)",
    )
  config = checkpointing.saved_config(args.workdir)
  if config is None:
    raise errors.NotFound(
        f"no checkpoint with a saved config in {args.workdir}/checkpoints",
        "train into this --workdir first, or pass --weights=FILE with "
        "--config=configs/cost.py:VARIANT",
    )
  return config


def _variables(config, args):
  if args.weights:
    return (
        weights.load_converted_variables(config, args.weights),
        f"converted:{os.path.abspath(args.weights)}",
    )
  return weights.restore_variables(config, args.workdir)


def run(args) -> dict:
  """Exports as ``args`` say; -> the artefact's export.json."""
  if not (args.workdir or args.weights):
    raise errors.InvalidValue(
        "nothing to export. Fix: pass --workdir=DIR (a training run) or "
        "--weights=FILE (converted weights)"
    )
  if args.workdir and not os.path.isdir(args.workdir):
    raise errors.InvalidValue(
        f"--workdir {args.workdir} is not a folder. Fix: give the --workdir "
        "the run was trained with"
    )
  from cost_jax import export as export_lib
  from cost_jax.tracking.engine import Engine

  config = _config(args)
  try:
    variables, info = _variables(config, args)
  except (FileNotFoundError, ValueError) as err:
    raise errors.InvalidValue(
        f'{str(err).rstrip(".")}. Fix: check --workdir / --weights and '
        "--config (the variant the weights were trained with)"
    ) from None
  return export_lib.export(
      Engine(config, variables), args.format, args.out, info
  )


@errors.exits_on_user_error
def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  try:
    meta = run(args)
  except ImportError as err:  # an export format's optional package
    raise errors.UserError(err) from None
  size = os.path.getsize(args.out) / 2**20
  print(
      f"wrote {args.out} ({meta['format']}, variant {meta['variant']}, "
      f"{', '.join(meta['graphs'])}; {size:.1f} MiB)"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
