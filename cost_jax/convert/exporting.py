"""`export`: our variables -> a PyTorch state_dict for torch_reference.

Reads a converted file (safetensors + sidecar) or an Orbax checkpoint of a
training run, maps every leaf to its torch key (cost_jax/convert/names.py,
plus BatchNorm `num_batches_tracked`), and writes a torch-named safetensors
file that `torch_reference.load_exported` loads with strict=True.
"""

import os
import warnings

from etils import epath
import numpy as np

from cost_jax import checkpointing
from cost_jax import weights
from cost_jax.convert import matching, names, store
from cost_jax.convert.matching import ConversionError
from cost_jax.convert.torch_files import WeightFileError


def _orbax_variables(folder):
  """({'params', 'batch_stats'}, saved config or {}) of a run's WORKDIR, its
  checkpoints/ (the latest step), a step folder or its 'state' item."""
  folder = epath.Path(os.path.abspath(folder))
  if (folder / 'checkpoints').is_dir():
    folder = folder / 'checkpoints'
  steps = [d for d in folder.iterdir() if d.name.isdigit()]
  if steps:
    folder = max(steps, key=lambda d: int(d.name))
  config = checkpointing.step_config(folder)
  try:
    with (
        warnings.catch_warnings()
    ):  # "Sharding info not provided": host arrays.
      warnings.simplefilter('ignore', UserWarning)
      return weights.restore_step(folder), config
  except Exception as e:  # noqa: BLE001 (orbax raises many types)
    raise WeightFileError(
        f'{folder} is not a readable Orbax checkpoint with model "params": '
        f'{type(e).__name__}: {e}',
        'give a checkpoint step folder that training completed',
    ) from None


def read_variables(source):
  """(flat {JAX path: numpy}, sidecar) from a converted file or an Orbax
  checkpoint (a run's WORKDIR, its checkpoints/, a step or its item)."""
  if os.path.isdir(source):
    variables, config = _orbax_variables(source)
    meta = {'variant': config['variant'], 'config': config} if config else {}
    return {k: np.asarray(v) for k, v in names.flatten(variables).items()}, meta
  tensors, meta = store.read(source)
  if meta.get('layout') == 'torch':
    raise ConversionError(
        f'{source} is already a PyTorch export',
        'give the file it was exported from',
    )
  bad = sorted(
      k for k in tensors if not k.startswith(('params/', 'batch_stats/'))
  )
  if bad:
    raise ConversionError(
        f'{source} is not in our format (keys must start '
        'with params/ or batch_stats/):'
        + matching.listing('foreign keys', bad),
        'give a file written by cost_jax.convert or a ' 'training checkpoint',
    )
  return tensors, meta


def export(source, output):
  """Our variables -> a torch state_dict (safetensors) that
  torch_reference.build_model(config, ...) loads with strict=True."""
  flat, meta = read_variables(source)
  partial = [c for c in meta.get('covers', ['']) if c]
  if partial or meta.get('left_to_init'):
    raise ConversionError(
        f'{source} covers only part of a model ({partial or "left_to_init"})',
        'export a full model (a training checkpoint or an import/transt '
        'conversion)',
    )
  state = matching.export(flat)
  side = {k: meta[k] for k in ('variant', 'config') if k in meta}
  store.write(
      output,
      state,
      dict(
          side, command='export', layout='torch', source=os.path.abspath(source)
      ),
  )
  return state
