"""Converted-weight files: atomic writing and `load_converted`.

A converted file is `NAME.safetensors` holding '/'-joined JAX paths
('params/backbone/conv1/kernel', 'batch_stats/backbone/bn1/mean', ...) and a
sidecar `NAME.json`: the command, source, config variant and which parts of
the model the file covers (`covers`: path prefixes; '' = everything).
`export` writes torch-named files with the same sidecar (`layout: torch`).
"""

import json
import os
import tempfile
from typing import Dict, Optional, Sequence

import jax.numpy as jnp
import numpy as np
from safetensors.numpy import save_file

from cost_jax.convert import bert_folder
from cost_jax.convert import names
from cost_jax.convert.matching import ConversionError, listing
from cost_jax.convert.torch_files import read_file

FORMAT = 'cost_jax-converted-v1'
# The TransT visual branch of COST (what `transt --target=cost` covers).
VISUAL_BRANCH = (
    'params/backbone/',
    'batch_stats/backbone/',
    'params/input_proj/',
    'params/featurefusion_network/',
)


def sidecar_path(path: str) -> str:
  if not path.endswith('.safetensors'):
    raise ValueError(
        f'{path}: converted weights are written as '
        '*.safetensors (give an output path ending in it).'
    )
  return path[: -len('.safetensors')] + '.json'


def write(path: str, tensors: Dict[str, np.ndarray], meta: dict):
  """Writes the weights and the sidecar via temp files + os.replace."""
  side = sidecar_path(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  temps = []
  try:
    for _ in range(2):
      fd, tmp = tempfile.mkstemp(dir=folder, prefix='.convert-', suffix='.tmp')
      os.close(fd)
      temps.append(tmp)
    save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()}, temps[0]
    )
    with open(temps[1], 'w') as f:
      json.dump(dict(meta, format=FORMAT), f, indent=1, sort_keys=True)
    umask = os.umask(0)
    os.umask(umask)
    for tmp in temps:  # mkstemp makes 0600 files; use the usual mode.
      os.chmod(tmp, 0o666 & ~umask)
    os.replace(temps[0], path)
    os.replace(temps[1], side)
  finally:
    for tmp in temps:
      if os.path.exists(tmp):
        os.remove(tmp)


def read(path: str):
  """(tensors {key: numpy}, sidecar dict or {}) of a converted file."""
  tensors = read_file(path)
  meta = {}
  side = sidecar_path(path)
  if os.path.exists(side):
    with open(side) as f:
      meta = json.load(f)
  return tensors, meta


def _covered(path, prefixes):
  return any(path.startswith(p) for p in prefixes)


def _shape(value):
  """The shape of an array or a jax.ShapeDtypeStruct, as a list."""
  return list(value.shape if hasattr(value, 'shape') else np.shape(value))


def _check_fit(path, meta, tensors, target, in_scope):
  """Raises ConversionError listing every tensor that does not fit."""
  left = set(meta.get('left_to_init', []))
  unexpected = sorted(k for k in tensors if k not in target and in_scope(k))
  misshaped = sorted(
      f'{k}: file {_shape(tensors[k])}, model {_shape(target[k])}'
      for k in tensors
      if k in target and in_scope(k) and _shape(tensors[k]) != _shape(target[k])
  )
  missing = sorted(
      k for k in target if in_scope(k) and k not in tensors and k not in left
  )
  if unexpected or misshaped or missing:
    raise ConversionError(
        f'{path} does not fit the model (converted with '
        f'{meta.get("command", "?")} for variant {meta.get("variant", "?")!r}):'
        + listing('missing tensors', missing)
        + listing('unexpected tensors', unexpected)
        + listing('mis-shaped tensors', misshaped),
        'load it with the variant it was converted for, or convert it again '
        'for this one',
    )


def load_converted(
    path: str, target_variables, include: Optional[Sequence[str]] = None
):
  """Variables like `target_variables` with the file's tensors put in.

  `path` is a converted file, or an HF BERT folder (converted in memory into
  the text encoder, like `python -m cost_jax.convert bert`). Leaves the file
  does not cover (its sidecar's `covers`; and only the path prefixes in
  `include` when given, e.g. VISUAL_BRANCH) keep their target values.
  Raises ConversionError naming the file and every missing, unexpected or
  mis-shaped tensor.
  """
  target = names.flatten(target_variables)
  if os.path.isdir(path):
    tensors, meta = bert_folder.tensors(
        path, {k: tuple(_shape(v)) for k, v in target.items()}
    )
  else:
    tensors, meta = read(path)
  if meta.get('layout') == 'torch':
    raise ConversionError(
        f'{path} is a PyTorch export (torch key names)',
        'load it with torch_reference.load_exported',
    )
  covers = tuple(meta.get('covers', ['']))
  scope = tuple(include) if include is not None else ('',)
  in_scope = lambda p: _covered(p, covers) and _covered(p, scope)
  _check_fit(path, meta, tensors, target, in_scope)
  flat = dict(target)
  for key, value in tensors.items():
    if in_scope(key):
      flat[key] = jnp.asarray(value, dtype=target[key].dtype)
  out = dict(target_variables)
  out.update(names.unflatten(flat))
  return out
