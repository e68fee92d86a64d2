"""Deterministic training batches, a tiny train config and test helpers.

`global_batch(config, step)` is a pure function of (config, step), so any
number of processes or devices can slice the same global batch;
`batch_iterator(config, process_index, process_count, start_step)` has the
signature `cost_jax.train.train` expects of a batch source.
"""

import json
import os
import signal
import tempfile
import time

from flax import traverse_util
import jax
import numpy as np
import optax

from configs import cost
from cost_jax import train_step
from tests import tolerances

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# XLA's persistent cache, shared by the in-process runs and the subprocesses
# of the training tests: the same step compiles once per machine.
CACHE_DIR = os.path.join(tempfile.gettempdir(), 'cost_jax_test_xla_cache')

TINY_BERT = dict(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    hidden_act='gelu',
)


def tiny_text_folder(root):
  """Writes an HF-style config.json of a 1-layer, 32-wide BERT; returns it."""
  folder = os.path.join(root, 'tiny_bert')
  os.makedirs(folder, exist_ok=True)
  # Atomic: several processes of a multi-process test write it at once.
  tmp = os.path.join(folder, f'config.json.{os.getpid()}')
  with open(tmp, 'w') as f:
    json.dump(TINY_BERT, f)
  os.replace(tmp, os.path.join(folder, 'config.json'))
  return folder


def tiny_config(root, variant='smoke', num_steps=6):
  """The smoke config with a tiny random BERT, no dropout, global batch 4."""
  config = cost.get_config(variant)
  config.text.path = tiny_text_folder(root)
  config.text.pretrained = False
  config.text.num_layers = 1
  config.model.fusion.dropout = 0.0
  config.model.vlt.dropout = 0.0
  config.train.batch_size = 4
  config.train.num_steps = num_steps
  config.train.log_every = 1
  config.train.ckpt_every = 1000
  config.train.lr = config.train.backbone_lr = config.train.text_lr = 1e-3
  return config


def global_batch(config, step, seed=0):
  """The global batch of `step` (numpy, the input pipeline's format); pairs
  0 and 1 (4 and 5, ...) share a description."""
  rng = np.random.default_rng([seed, step])
  batch = train_step.synthetic_batch(
      config, config.train.batch_size, rng, TINY_BERT['vocab_size']
  )
  for key in ('text_ids', 'text_mask'):
    batch[key][1::4] = batch[key][0::4][: len(batch[key][1::4])]
  return batch


def local_slice(batch, process_index, process_count):
  """This process's contiguous share of a global batch."""
  n = len(batch['template']) // process_count
  return {
      k: v[process_index * n : (process_index + 1) * n]
      for k, v in batch.items()
  }


def batch_iterator(config, process_index, process_count, start_step):
  """Endless process-local batches from `start_step` on."""
  step = start_step
  while True:
    yield local_slice(global_batch(config, step), process_index, process_count)
    step += 1


def blocking_iterator(num_batches):
  """A batch source that stops yielding (sleeps) after `num_batches`."""

  def make(config, process_index, process_count, start_step):
    source = batch_iterator(config, process_index, process_count, start_step)
    for _ in range(num_batches):
      yield next(source)
    while True:
      time.sleep(60)

  return make


def dying_iterator(num_batches, victim, wait_s=0.0):
  """A batch source with which process `victim` SIGKILLs itself after
  `num_batches` batches and `wait_s` seconds (in which an async checkpoint
  save can finish); the others go on."""

  def make(config, process_index, process_count, start_step):
    source = batch_iterator(config, process_index, process_count, start_step)
    for i in range(1 << 30):
      if i == num_batches and process_index == victim:
        time.sleep(wait_s)
        os.kill(os.getpid(), signal.SIGKILL)
      yield next(source)

  return make


# --- equality across reduction orders ----------------------------------------
# How far gradients and forward outputs of the tiny config move, relative to
# their scale, when one step runs with its batch sums in another order
# (another device or process count, CPU vector width; tests/tolerances.py).
# BatchNorm statistics and weight gradients sum over n <= 4 pairs x 64 x 64
# positions = 16384 terms, per device and then all-reduced; the 13
# batch-normalised layers chain 13 such sums forward and 13 back. A real bug
# is >= 25 % (a missing all-reduce scales gradients by 4 or 1/4; local CoA
# negatives change the CoA term by O(1)).
GRAD_RTOL = tolerances.reordered(depth=26, length=16384)  # 3.9e-5
FORWARD_RTOL = tolerances.reordered(depth=13, length=16384)  # 2.7e-5


def sgd_optimizer(config, params):
  """A stand-in for optim.make_optimizer in equality tests: plain SGD at
  config.train.lr. Its params move by lr x gradient, so their difference
  is bounded by the gradients' (`sgd_params_atol`); AdamW's normalised
  update turns a rounding-level gradient into a step of about +-lr whatever
  its sign, which another reduction order flips."""
  del params
  lr = config.train.lr
  return optax.sgd(lr), {'default': optax.constant_schedule(lr)}


def sgd_params_atol(lr, grad_norms, max_param):
  """Bound on |params difference| after SGD steps with these gradient
  norms, taken in two reduction orders. Each step adds lr x the gradients'
  difference (<= GRAD_RTOL x grad norm, which bounds every entry) and at
  most one rounding of each param, 2 u |p| = 2**-23 |p|; the feedback of
  earlier differences through the next gradients is lr x Hessian x
  difference, second order at lr 1e-3."""
  return sum(lr * GRAD_RTOL * g + 2.0**-23 * max_param for g in grad_norms)


# --- test helpers ------------------------------------------------------------
def flat_params(state):
  """{'a/b/kernel': numpy array} of a train state's params."""
  return {
      '/'.join(k): np.asarray(v)
      for k, v in traverse_util.flatten_dict(
          jax.device_get(state['params'])
      ).items()
  }


def replicated(devices=None):
  """A replicated sharding over `devices` (default: all)."""
  devices = jax.devices() if devices is None else devices
  return jax.sharding.NamedSharding(
      jax.sharding.Mesh(np.array(devices), ('data',)),
      jax.sharding.PartitionSpec(),
  )


def enable_compilation_cache():
  jax.config.update('jax_compilation_cache_dir', CACHE_DIR)


def subprocess_env(devices=4):
  """Environment of a JAX subprocess with `devices` CPU devices and this
  process's other XLA flags (equal flags give bit-equal results)."""
  env = {k: v for k, v in os.environ.items() if 'proxy' not in k.lower()}
  flags = [
      f
      for f in env.get('XLA_FLAGS', '').split()
      if not f.startswith('--xla_force_host_platform_device_count')
  ]
  flags.append(f'--xla_force_host_platform_device_count={devices}')
  env.update(
      XLA_FLAGS=' '.join(flags),
      JAX_DISABLE_MOST_OPTIMIZATIONS='1',
      JAX_PLATFORMS='cpu',
      JAX_COMPILATION_CACHE_DIR=CACHE_DIR,
      COST_JAX_TENSORBOARD='0',
      TF_CPP_MIN_LOG_LEVEL='2',
      PYTHONPATH=os.pathsep.join([ROOT, env.get('PYTHONPATH', '')]),
  )
  return env


def assert_sgd_runs_close(actual, expected, workdir, lr):
  """Flat {name: array} params of two runs with `sgd_optimizer` over the
  same batches in other reduction orders agree within `sgd_params_atol`,
  tensor by tensor; the gradient norms come from the metrics.jsonl of
  `expected`'s workdir."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    norms = {r['step']: r['grad_norm'] for r in map(json.loads, f)}
  assert set(actual) == set(expected)
  worst = max(
      (
          float(np.abs(actual[k] - v).max())
          / sgd_params_atol(lr, norms.values(), float(np.abs(v).max())),
          k,
      )
      for k, v in expected.items()
  )
  print(f'SGD params: max |difference| / bound {worst[0]:.3g} ({worst[1]})')
  assert worst[0] <= 1, worst
