"""Reads PyTorch (.pth/.pt/.bin) and safetensors weight files into numpy.

PyTorch files are read only with `torch.load(weights_only=True)`; torch is
imported lazily inside `_torch_load`, so nothing else here needs it. A
checkpoint that pickles foreign objects (the official transt.pth holds a
`constructor` of TransT's `ltr` package) loads through inert placeholder
classes registered with `torch.serialization.safe_globals` under the names
that `get_unsafe_globals_in_checkpoint` reports. Placeholders can be
created and given state, never called: a pickle that calls a function, or
loads one torch blocks (os.system, ...), is refused as unsafe, naming it.
"""

import importlib
import os
import pickletools
import zipfile

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy

from cost_jax import errors

# numpy's side-effect-free array/scalar reconstructors (pickled numpy values in
# training stats); everything else foreign becomes a placeholder.
_NUMPY_SAFE = (
    'numpy.core.multiarray.scalar',
    'numpy._core.multiarray.scalar',
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray._reconstruct',
    'numpy.ndarray',
    'numpy.dtype',
)


class WeightFileError(errors.UserError, ValueError):
  """A weight file that cannot be read safely or is not what was expected."""


_RESAVE = (
    're-save the tensors alone from a trusted copy '
    '(torch.save(model.state_dict(), path)) or as safetensors'
)


class RefusedCall(Exception):
  """Raised when a pickle tries to call a foreign function."""


def _placeholder(full_name):
  """An inert class standing in for `full_name` (module.qualname)."""
  module, _, qualname = full_name.rpartition('.')

  def init(self, *args, **kwargs):
    raise RefusedCall(full_name)

  def setstate(self, state):
    self.__dict__['pickled_state'] = state

  def setitem(self, key, value):
    self.__dict__.setdefault('pickled_items', {})[key] = value

  def append(self, value):
    self.__dict__.setdefault('pickled_list', []).append(value)

  namespace = {
      '__module__': module,
      '__qualname__': qualname,
      '__new__': lambda cls, *a, **k: object.__new__(cls),
      '__init__': init,
      '__setstate__': setstate,
      '__setitem__': setitem,
      'append': append,
      'extend': lambda self, v: [append(self, x) for x in v],
      '__repr__': lambda self: f'<placeholder for {full_name}>',
  }
  return type(qualname.rsplit('.', 1)[-1], (), namespace)


def _unsafe_globals(path):
  """Foreign globals of a zip (torch>=1.6) or legacy (torch<=1.5) file."""
  # Lazy: torch (optional, heavy) only to read PyTorch files.
  import torch  # pylint: disable=g-import-not-at-top
  from torch import _weights_only_unpickler as wou

  if zipfile.is_zipfile(path):
    return torch.serialization.get_unsafe_globals_in_checkpoint(path)
  with open(path, 'rb') as f:
    if f.read(4) == b'PK\x03\x04':
      raise WeightFileError(
          f'{path} is a truncated or damaged zip archive '
          '(torch.save format without its central directory)',
          'copy or download the file again',
      )
  safe = set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())
  with open(path, 'rb') as f:
    for _ in range(3):  # magic number, protocol version, sys info
      for _ in pickletools.genops(f):
        pass
    return sorted(wou.get_globals_in_pkl(f) - safe)


def _numpy_dtype_classes():
  """numpy.dtypes.*DType: pickled dtypes are rebuilt, then given state."""
  return [type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGSUV']


def _safe_globals_for(names):
  out = _numpy_dtype_classes() if 'numpy.dtype' in names else []
  for name in names:
    if name in _NUMPY_SAFE:
      module, _, attr = name.rpartition('.')
      try:
        out.append((getattr(importlib.import_module(module), attr), name))
        continue
      except (ImportError, AttributeError):
        pass
    out.append((_placeholder(name), name))
  return out


def _torch_load(path):
  """torch.load(weights_only=True) with placeholders for foreign classes."""
  # Lazy: torch (optional, heavy) only to read PyTorch files.
  import torch  # pylint: disable=g-import-not-at-top

  foreign = []
  try:
    foreign = _unsafe_globals(path)
    with torch.serialization.safe_globals(_safe_globals_for(foreign)):
      return torch.load(path, map_location='cpu', weights_only=True)
  except WeightFileError:
    raise
  except Exception as e:  # noqa: BLE001 (torch raises many types here)
    chain = (e, e.__cause__, e.__context__)
    refused = next((x for x in chain if isinstance(x, RefusedCall)), None)
    if refused is not None:
      raise _unsafe(
          path, f'calls {refused.args[0]}(...) while loading'
      ) from None
    text = ' '.join(str(x) for x in chain if x is not None)
    blocked = [name for name in foreign if name in text]
    if blocked:
      raise _unsafe(path, f'asks for {", ".join(blocked)}') from None
    raise WeightFileError(
        f'{path} is not a readable PyTorch weight file (truncated, corrupt or '
        f'not written by torch.save): {_reason(e)}',
        'give a file written by torch.save, or a .safetensors file',
    ) from None


def _unsafe(path, what):
  """The refusal of a pickle that would run code (`what` it does)."""
  return WeightFileError(
      f'{path} was refused as unsafe: its pickle {what}, which could run '
      'code on this machine; nothing was loaded',
      _RESAVE,
  )


def _reason(error):
  """The informative line of a torch.load error, without torch's advice
  (loading with weights_only=False would run the file's code)."""
  text = str(error)
  marker = 'WeightsUnpickler error:'
  if marker in text:
    text = text.split(marker, 1)[1]
  lines = [
      line.strip()
      for line in text.splitlines()
      if line.strip()
      and 'weights_only' not in line
      and not line.strip().startswith('Check the documentation')
  ]
  return f'{type(error).__name__}: {lines[0] if lines else "cannot unpickle"}'


def _read_safetensors(path):
  try:
    return load_numpy(path)
  except TypeError:  # bfloat16: numpy has no such dtype; read with torch.
    # Lazy: torch (optional, heavy) only for bfloat16 files.
    from safetensors.torch import load_file as load_torch

    return tensors_to_numpy(load_torch(path), path, 'safetensors file')
  except (SafetensorError, OSError, ValueError) as e:
    raise WeightFileError(
        f'{path} is not a readable safetensors file '
        f'(truncated or corrupt?): {e}',
        'copy or download the file again',
    ) from None


def read_file(path):
  """Returns the file's object: a dict of numpy arrays for safetensors, the
  unpickled object (tensors kept as torch tensors) for PyTorch files."""
  if not os.path.isfile(path):
    raise WeightFileError(
        f'no such weight file: {path}',
        'check the path (--input, or the config field naming it)',
    )
  if path.endswith('.safetensors'):
    return _read_safetensors(path)
  return _torch_load(path)


def tensors_to_numpy(obj, path, what='state_dict'):
  """A {name: tensor} mapping -> {name: float32/int numpy}; clear errors."""
  if not hasattr(obj, 'items'):
    raise WeightFileError(
        f'{path}: expected a {what} (a mapping of names to '
        f'tensors), found {type(obj).__name__}',
        _RESAVE,
    )
  out = {}
  for key, value in obj.items():
    if isinstance(value, np.ndarray):
      out[str(key)] = value
    elif hasattr(value, 'detach'):
      value = value.detach().cpu()
      if value.is_floating_point():
        value = value.float()
      out[str(key)] = value.numpy()
    else:
      raise WeightFileError(
          f'{path}: entry {key!r} of the {what} is a '
          f'{type(value).__name__}, not a tensor',
          _RESAVE,
      )
  return out


def state_dict(obj, path, wrappers):
  """The first of `wrappers` present in a checkpoint dict, else the dict."""
  if isinstance(obj, dict):
    for name in wrappers:
      if name in obj and hasattr(obj[name], 'items'):
        return tensors_to_numpy(obj[name], path, f"'{name}' state_dict")
    if not all(hasattr(v, 'shape') for v in obj.values()):
      raise WeightFileError(
          f'{path}: expected a state_dict or a checkpoint dict with one of '
          f'{list(wrappers)}; found entries {sorted(map(str, obj))[:12]}',
          'give the checkpoint this command converts (see --help)',
      )
  return tensors_to_numpy(obj, path)
