"""Multi-host start-up: `maybe_initialize` runs jax.distributed.initialize
before any device is touched (docs/scaling.md).

When it initialises:
  * explicit coordinator ('host:port'), num_processes and process_id (local
    CPU tests, hand-launched GPU nodes);
  * `enabled=True` (main.py --distributed) or env COST_DISTRIBUTED=1 (or
    COST_JAX_DISTRIBUTED=1): JAX auto-detects Cloud TPU pods, SLURM, Open
    MPI and Kubernetes;
  * env JAX_COORDINATOR_ADDRESS set (JAX reads JAX_NUM_PROCESSES,
    JAX_PROCESS_ID from the environment too).
Otherwise it does nothing (one process).

Every process must then run the same program. A process that dies makes
the coordination service stop the others once `heartbeat_timeout_s` passes
without its heartbeat (env COST_JAX_HEARTBEAT_TIMEOUT, default 100 s as in
JAX), so a broken job never hangs silently.
"""

import inspect
import logging
import os

from absl import flags
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint  # noqa: F401  (defines the orbax flags used below)

try:  # Private: its coordination client may move between JAX versions.
  from jax._src import distributed as jax_distributed
except ImportError:
  jax_distributed = None

ENV_ENABLE = ('COST_DISTRIBUTED', 'COST_JAX_DISTRIBUTED')
ENV_HEARTBEAT = 'COST_JAX_HEARTBEAT_TIMEOUT'
PROXY_VARS = (
    'http_proxy',
    'https_proxy',
    'all_proxy',
    'HTTP_PROXY',
    'HTTPS_PROXY',
    'ALL_PROXY',
)


def wanted(coordinator=None, enabled=None, env=None) -> bool:
  """Whether this launch asks for jax.distributed (a flag, or the env)."""
  env = os.environ if env is None else env
  if coordinator or enabled:
    return True
  if any(env.get(name, '0').lower() in ('1', 'true') for name in ENV_ENABLE):
    return True
  return bool(env.get('JAX_COORDINATOR_ADDRESS'))


def initialize_kwargs(
    coordinator=None,
    num_processes=None,
    process_id=None,
    heartbeat_timeout_s=None,
    env=None,
) -> dict:
  """Arguments for jax.distributed.initialize; checks explicit settings."""
  env = os.environ if env is None else env
  explicit = (coordinator, num_processes, process_id)
  kwargs = {}
  if any(v is not None for v in explicit):
    if any(v is None for v in explicit):
      raise ValueError(
          'Give --coordinator=HOST:PORT, --num_processes=N and '
          '--process_id=I together (or none of them to auto-detect a TPU pod, '
          f'SLURM or MPI job); got coordinator={coordinator!r}, '
          f'num_processes={num_processes!r}, process_id={process_id!r}.'
      )
    if not 0 <= process_id < num_processes:
      raise ValueError(
          f'--process_id={process_id} must be in ' f'[0, {num_processes}).'
      )
    kwargs.update(
        coordinator_address=coordinator,
        num_processes=int(num_processes),
        process_id=int(process_id),
    )
  timeout = heartbeat_timeout_s or env.get(ENV_HEARTBEAT)
  if timeout:
    kwargs['heartbeat_timeout_seconds'] = int(timeout)
  return kwargs


def maybe_initialize(
    enabled=None,
    coordinator=None,
    num_processes=None,
    process_id=None,
    heartbeat_timeout_s=None,
    env=None,
) -> bool:
  """Initialises jax.distributed when asked (see module doc); True if it did.

  main.py: maybe_initialize(FLAGS.distributed, FLAGS.coordinator,
  FLAGS.num_processes, FLAGS.process_id).
  """
  env = os.environ if env is None else env
  if not wanted(coordinator, enabled, env):
    return False
  kwargs = initialize_kwargs(
      coordinator, num_processes, process_id, heartbeat_timeout_s, env
  )
  proxies = [v for v in PROXY_VARS if env.get(v)]
  if proxies:
    logging.warning(
        'Proxy variables %s are set: jax.distributed may hang on '
        'connecting; unset them if it does.',
        proxies,
    )
  use_gloo_between_cpu_processes()
  jax.distributed.initialize(**supported(kwargs))
  use_coordination_barriers_in_orbax()
  logging.info(
      'jax.distributed: process %d of %d, %d local / %d global ' 'devices.',
      jax.process_index(),
      jax.process_count(),
      jax.local_device_count(),
      jax.device_count(),
  )
  return True


def use_gloo_between_cpu_processes():
  """Collectives between CPU processes (tests; GPU/TPU use their own). JAX
  versions that lack the option (or made gloo the default) are left alone."""
  try:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  except (AttributeError, KeyError, ValueError) as e:
    logging.info('CPU collectives option not set (%s).', e)


def supported(kwargs) -> dict:
  """`kwargs` without those this JAX's jax.distributed.initialize lacks
  (heartbeat_timeout_seconds moves between versions), with a warning."""
  params = inspect.signature(jax.distributed.initialize).parameters
  if any(p.kind == p.VAR_KEYWORD for p in params.values()):
    return kwargs
  dropped = sorted(set(kwargs) - set(params))
  if dropped:
    logging.warning(
        'jax %s: jax.distributed.initialize takes no %s; ' 'ignored.',
        jax.__version__,
        dropped,
    )
  return {k: v for k, v in kwargs.items() if k in params}


_barrier_count = [0]
ORBAX_BARRIER_FLAG = 'experimental_orbax_use_distributed_barrier'


def use_coordination_barriers_in_orbax():
  """Makes orbax synchronise processes through the coordination service
  (with its 5-minute timeout) instead of a device collective: a gloo
  collective fails when processes reach it more than 30 s apart, which a
  busy CPU host easily causes."""
  if ORBAX_BARRIER_FLAG in flags.FLAGS:
    flag = flags.FLAGS[ORBAX_BARRIER_FLAG]
    flag.value = True
    flag.present = 1  # Readable even where absl has not parsed argv.


def barrier(name, timeout_s=3600):
  """Waits until every process gets here: a coordination-service barrier,
  no device collective (unlike multihost_utils.sync_global_devices), so it
  may wait longer than gloo's 30 s connect timeout, e.g. while another
  process still compiles. A no-op in a single process."""
  if jax.process_count() == 1:
    return
  _barrier_count[0] += 1
  key = f'cost_jax/{name}/{_barrier_count[0]}'
  state = getattr(jax_distributed, 'global_state', None)
  client = getattr(state, 'client', None)
  if client is None or not hasattr(client, 'wait_at_barrier'):
    # A JAX without the (private) client: a device-collective barrier.
    multihost_utils.sync_global_devices(key)
    return
  client.wait_at_barrier(key, timeout_in_ms=timeout_s * 1000)
