"""Test setup: 4 fake CPU devices (before JAX starts), shared tiny models."""

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
