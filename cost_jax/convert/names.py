"""The mechanical map between our variables and PyTorch state_dict keys.

A JAX leaf `(collection, *modules, leaf)` names a torch key: module segments
`name_N` become `name.N`, `backbone` becomes TransT's `backbone.0.body`, and
the leaf maps by kind:

  params  kernel (4-D)       -> weight  OIHW <-> HWIO
  params  kernel (2-D)       -> weight  (out, in) <-> (in, out)
  params  in_proj/kernel     -> in_proj_weight [3D, D] <-> [D, 3D]
  params  in_proj/bias       -> in_proj_bias
  params  scale | embedding  -> weight
  params  bias               -> bias
  params  obj_token, vlt_pos -> the same name (raw parameters)
  batch_stats mean | var     -> running_mean | running_var
                                (+ num_batches_tracked on export)

The map is built from the target tree, so it serves both directions.
"""

import dataclasses
import re
from typing import Dict, Tuple

import numpy as np

BACKBONE_TORCH = 'backbone.0.body'
_NUMBERED = re.compile(r'^(.*)_(\d+)$')
# Torch keys that carry no weights of ours (counters, HF position buffers).
IGNORED_SUFFIXES = (
    '.num_batches_tracked',
    'embeddings.position_ids',
    'embeddings.token_type_ids',
)


@dataclasses.dataclass(frozen=True)
class Entry:
  """One JAX leaf: its '/'-joined path, torch key, kind and JAX shape."""

  path: str
  key: str
  kind: str  # 'conv' | 'linear' | 'copy'
  shape: Tuple[int, ...]

  @property
  def torch_shape(self):
    return torch_shape(self.kind, self.shape)


def torch_shape(kind, shape):
  if kind == 'conv':
    h, w, i, o = shape
    return (o, i, h, w)
  if kind == 'linear':
    return tuple(reversed(shape))
  return tuple(shape)


def _module_key(modules):
  parts = []
  for i, name in enumerate(modules):
    if i == 0 and name == 'backbone':
      parts.append(BACKBONE_TORCH)
      continue
    match = _NUMBERED.match(name)
    parts.extend(match.groups() if match else (name,))
  return '.'.join(parts)


def entry_for(path: str, shape) -> Entry:
  """The torch key and transform of one '/'-joined JAX path."""
  collection, *modules, leaf = path.split('/')
  shape = tuple(int(d) for d in shape)
  prefix = _module_key(modules)
  join = lambda name: f'{prefix}.{name}' if prefix else name
  if collection == 'batch_stats':
    names = {'mean': 'running_mean', 'var': 'running_var'}
    return Entry(path, join(names[leaf]), 'copy', shape)
  if collection != 'params':
    raise ValueError(f'Unknown variable collection {collection!r} in {path}.')
  if modules and modules[-1] == 'in_proj':
    parent = _module_key(modules[:-1])
    name = {'kernel': 'in_proj_weight', 'bias': 'in_proj_bias'}[leaf]
    return Entry(
        path,
        f'{parent}.{name}',
        'linear' if leaf == 'kernel' else 'copy',
        shape,
    )
  if leaf == 'kernel':
    kind = {4: 'conv', 2: 'linear'}.get(len(shape))
    if kind is None:
      raise ValueError(
          f'{path}: a kernel of rank {len(shape)} has no torch twin.'
      )
    return Entry(path, join('weight'), kind, shape)
  if leaf in ('scale', 'embedding'):
    return Entry(path, join('weight'), 'copy', shape)
  return Entry(path, join(leaf), 'copy', shape)


def flatten(variables) -> Dict[str, object]:
  """{'params': {...}, 'batch_stats': {...}} -> {'params/a/b': leaf}."""
  out = {}

  def walk(prefix, node):
    if hasattr(node, 'items'):
      for name, child in node.items():
        walk(f'{prefix}/{name}' if prefix else str(name), child)
    else:
      out[prefix] = node

  for collection in ('params', 'batch_stats'):
    if collection in variables:
      walk(collection, variables[collection])
  return out


def unflatten(flat: Dict[str, object]):
  """The inverse of `flatten` (nested plain dicts)."""
  tree = {}
  for path, value in flat.items():
    node = tree
    *parents, leaf = path.split('/')
    for name in parents:
      node = node.setdefault(name, {})
    node[leaf] = value
  return tree


def table(shapes: Dict[str, Tuple[int, ...]]) -> Dict[str, Entry]:
  """torch key -> Entry for every JAX path (with its shape) given."""
  entries = {}
  for path, shape in shapes.items():
    entry = entry_for(path, shape)
    if entry.key in entries:
      raise ValueError(
          f'{path} and {entries[entry.key].path} both map to '
          f'torch key {entry.key}.'
      )
    entries[entry.key] = entry
  return entries


# Axis orders (torch -> JAX, JAX -> torch) of the transformed kinds.
_AXES = {'conv': ((2, 3, 1, 0), (3, 2, 0, 1)), 'linear': ((1, 0), (1, 0))}


def _transpose(kind, value, direction):
  if kind not in _AXES:
    return value
  return np.ascontiguousarray(np.transpose(value, _AXES[kind][direction]))


def to_jax(kind, value: np.ndarray) -> np.ndarray:
  """A torch tensor (numpy) in our layout: OIHW -> HWIO, (out, in) -> (in, out)."""
  return _transpose(kind, value, 0)


def to_torch(kind, value: np.ndarray) -> np.ndarray:
  """The inverse of `to_jax`."""
  return _transpose(kind, value, 1)


def is_ignored(key: str) -> bool:
  return key.endswith(IGNORED_SUFFIXES)


def batchnorm_counters(flat_keys) -> Dict[str, np.ndarray]:
  """`num_batches_tracked` (int64 0) for every BatchNorm of an export."""
  out = {}
  for key in flat_keys:
    if key.endswith('.running_mean'):
      out[key[: -len('running_mean')] + 'num_batches_tracked'] = np.zeros(
          (), np.int64
      )
  return out
