"""Config files (configs/cost.py and the like), loaded by path.

Library code never imports a config file: a command takes its path, as
main.py's `--config=configs/cost.py[:variant]` does, and loads it here.
"""

import importlib.util
import os

from cost_jax import errors

_FIX = 'give a config file, e.g. --config=configs/cost.py'


def load_module(path):
  """The module of the config file at `path` (its `get_config` builds it)."""
  if not os.path.isfile(path):
    raise errors.NotFound(f'no config file {path!r}', _FIX)
  spec = importlib.util.spec_from_file_location('_cost_jax_config', path)
  if spec is None:
    raise errors.NotFound(f'{path!r} is not a Python config file', _FIX)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
