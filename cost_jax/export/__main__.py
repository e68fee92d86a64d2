"""python -m cost_jax.export: a trained run or converted weights -> one deployable zip.

    python -m cost_jax.export --workdir=runs/demo --format=stablehlo --out=cost_demo.zip
    python -m cost_jax.export --weights=checkpoints/transt_no_lb.safetensors \\
        --config=configs/cost.py:paper,no_lb --format=onnx --out=transt.onnx.zip

The config is the one saved with the run's latest checkpoint. ``--config``
(a config file and variant, with ``--config.FIELD=VALUE`` overrides, as in
main.py) is checked against it as ``--mode=evaluate`` checks it
(cost_jax.run_config); with ``--weights`` it names the variant.  Errors print one ``error: ... Fix: ...`` line, exit 2.
"""

from __future__ import annotations

import os
import sys

from absl import flags
from etils import epath
from ml_collections import config_flags

from cost_jax import checkpointing
from cost_jax import cli
from cost_jax import errors
from cost_jax import export as export_lib
from cost_jax import run_config
from cost_jax import weights
from cost_jax.tracking.engine import Engine

__all__ = ["main"]

PROGRAM = "python -m cost_jax.export"


def make_flags(argv=()) -> flags.FlagValues:
  """The command's flags (`argv`: the command line they parse)."""
  fv = flags.FlagValues()
  flags.DEFINE_string(
      "workdir",
      None,
      "training run folder (its latest checkpoint in checkpoints/)",
      flag_values=fv,
  )
  flags.DEFINE_string(
      "weights",
      None,
      "converted whole-model weights (cost_jax.convert) instead of a run",
      flag_values=fv,
  )
  config_flags.DEFINE_config_file(
      "config",
      None,
      "configs/cost.py:VARIANT (default: the config saved with the "
      "checkpoint); --config.FIELD=VALUE overrides a field",
      flag_values=fv,
      lock_config=True,
      sys_argv=list(argv),
  )
  flags.DEFINE_enum(
      "format",
      None,
      ["stablehlo", "onnx"],
      "stablehlo: jax.export, reloads in JAX; onnx: runs in onnxruntime",
      flag_values=fv,
  )
  flags.DEFINE_string("out", None, "the zip file to write", flag_values=fv)
  flags.mark_flags_as_required(["format", "out"], flag_values=fv)
  return fv


def _config(args):
  """The --config file's config, else the one saved with the run's checkpoints."""
  if args.config is not None:  # checked against a run's saved config
    return (
        run_config.with_checkpoint_config(
            args.config,
            args.workdir,
            set(config_flags.get_override_values(args["config"])),
        )
        if args.workdir
        else args.config
    )
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
  if args.workdir and not epath.Path(args.workdir).is_dir():  # or a bucket
    raise errors.InvalidValue(
        f"--workdir {args.workdir} is not a folder. Fix: give the --workdir "
        "the run was trained with"
    )
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
  argv = cli.argv_of(PROGRAM, argv)
  args = cli.parse_flags_only(make_flags(argv), argv, PROGRAM, __doc__)
  if args.config is None and any(a.startswith("--config.") for a in argv):
    raise errors.InvalidValue(
        "--config.FIELD=VALUE overrides need --config",
        "name the config file too, e.g. --config=configs/cost.py:demo",
    )
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
