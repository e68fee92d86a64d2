"""Test setup: 4 fake CPU devices (before JAX starts), shared tiny models and
fixtures, and the test groups.

Groups (markers, one per file, set here): `parity` (JAX against the PyTorch
reference; needs torch), `integration` (whole commands and processes: train,
track, evaluate, export, benchmarks) and `unit` (everything else). Run one
with `python -m pytest -q tests -m unit`.
"""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Compile fast (XLA's optimisation passes dominate test time on 2 cores).
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')

import jax  # noqa: E402  (after the environment above)
import pytest  # noqa: E402

from configs import cost  # noqa: E402
from cost_jax.models import factory  # noqa: E402


@pytest.fixture(scope='session')
def smoke_config():
  return cost.get_config('smoke')


@pytest.fixture(scope='session')
def smoke_model(smoke_config):
  """(config, model, spec, variables) of the smoke variant, initialised once."""
  model, spec = factory.create_model(smoke_config)
  variables = factory.init_variables(model, spec, jax.random.key(0))
  return smoke_config, model, spec, variables


@pytest.fixture(scope='module')
def one_torch_thread():
  """PyTorch on one thread for the module (its timing and float order stay
  those of one core, whatever the machine)."""
  from torch_reference import parity  # pylint: disable=g-import-not-at-top  (torch: optional)

  with parity.torch_threads(1):
    yield


PARITY = frozenset(
    {
        'test_convert.py',
        'test_parity_bert.py',
        'test_parity_blocks.py',
        'test_parity_tracking.py',
        'test_parity_train.py',
    }
)
INTEGRATION = frozenset(
    {
        'test_bad_input.py',
        'test_benchmarks.py',
        'test_docs.py',
        'test_export.py',
        'test_live.py',
        'test_multi_eval.py',
        'test_multiprocess.py',
        'test_resume.py',
        'test_track_video.py',
        'test_train_init.py',
        'test_url_workdir.py',
        'test_user_errors.py',
    }
)


def pytest_collection_modifyitems(items):
  for item in items:
    name = item.path.name
    group = (
        'parity'
        if name in PARITY
        else 'integration'
        if name in INTEGRATION
        else 'unit'
    )
    item.add_marker(group)
