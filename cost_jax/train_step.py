"""The training step: one per-replica function with named-axis collectives.

`make_per_replica_step` builds step(state, batch) -> (state, metrics) for
one replica's slice of the global batch. Gradients and metrics are
`lax.pmean`-ed over the 'data' axis, BatchNorm reduces its statistics over
it (the model is built with bn_axis_name=AXIS) and the CoA loss gathers its
negatives over it (cost_jax/losses.py), so every device count computes the
same update for the same global batch. Two runners execute it:

  PmapRunner      jax.pmap (config.train.parallel='pmap', the default), the
                  state unmapped (in_axes/out_axes None, as Flax's examples
                  do since JAX rebuilt pmap on shard_map).
  ShardMapRunner  jax.jit(jax.shard_map(...)) over a Mesh of all devices with
                  Auto axes ('shard_map'), check_vma=False so that gradients
                  are reduced only by the explicit pmean.

Both take the process-local numpy batch; the state and metrics are
replicated global arrays.
The state is a dict {'step', 'params', 'batch_stats', 'opt_state'}; it is
donated. The dropout key is fold_in(fold_in(key(seed), step), replica), so a
resumed run replays the same stream.
"""

import collections

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from cost_jax import distributed
from cost_jax import losses
from cost_jax import optim
from cost_jax.models import factory

AXIS = 'data'
BATCH_KEYS = (
    'template',
    'search',
    'search_box',
    'visible',
    'text_ids',
    'text_mask',
)


# --- state -------------------------------------------------------------------
def state_from_variables(variables, tx, sharding):
  """Replicated train state (step 0) from host or device `variables`."""
  params = replicate(variables['params'], sharding)
  batch_stats = replicate(variables.get('batch_stats', {}), sharding)
  opt_state = jax.jit(tx.init, out_shardings=sharding)(params)
  step = replicate(np.zeros((), np.int32), sharding)
  return {
      'step': step,
      'params': params,
      'batch_stats': batch_stats,
      'opt_state': opt_state,
  }


def abstract_state(variable_shapes, tx, sharding):
  """ShapeDtypeStructs (with `sharding`) of the train state; no allocation.

  variable_shapes: factory.variable_shapes(model, spec).
  """
  shapes = {
      'step': jax.ShapeDtypeStruct((), jnp.int32),
      'params': variable_shapes['params'],
      'batch_stats': variable_shapes.get('batch_stats', {}),
      'opt_state': jax.eval_shape(tx.init, variable_shapes['params']),
  }
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
      shapes,
  )


def replicate(tree, sharding):
  """Host values (identical on every process) -> replicated global arrays."""

  def put(x):
    x = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(put, tree)


Setup = collections.namedtuple(
    'Setup', 'model spec variable_shapes tx schedules runner abstract_state'
)


def setup(config, devices=None):
  """Model, optimizer, runner and abstract train state of a config."""
  model, spec = factory.create_model(config, bn_axis_name=AXIS)
  shapes = factory.variable_shapes(model, spec)
  tx, schedules = optim.make_optimizer(config, shapes['params'])
  frozen = optim.param_labels(shapes['params'], optim.frozen_components(config))
  frozen = jax.tree.map(lambda label: label == optim.FROZEN, frozen)
  step = make_per_replica_step(
      model, spec, tx, config.loss, config.seed, frozen=frozen
  )
  runner = make_runner(config.train.parallel, step, devices)
  return Setup(
      model,
      spec,
      shapes,
      tx,
      schedules,
      runner,
      abstract_state(shapes, tx, runner.replicated),
  )


# --- the per-replica step ----------------------------------------------------
def make_per_replica_step(
    model, spec, tx, loss_config, seed, axis_name=AXIS, frozen=None
):
  """step(state, batch) -> (new state, metrics) for one replica.

  frozen: a tree of Python bools like the params; True marks a frozen
  parameter, whose gradient is never computed (zeroed at trace time, so XLA
  drops e.g. the whole backward pass of a frozen text encoder) and which
  grad_norm leaves out.

  A step whose loss or gradient norm is not finite leaves params, optimizer
  and BatchNorm state unchanged (the step counter still advances) and reports
  metrics['finite'] = 0; the host stops or goes on (config.train.on_nan).
  """
  if spec.norm == 'batch' and model.bn_axis_name != axis_name:
    raise ValueError(
        f'Build the model with bn_axis_name={axis_name!r} so '
        'BatchNorm uses global batch statistics.'
    )
  root = jax.random.key(seed)

  def loss_fn(params, batch_stats, batch, rng):
    outputs, updates = model.apply(
        {'params': params, 'batch_stats': batch_stats},
        batch['template'],
        batch['search'],
        batch['text_ids'],
        batch['text_mask'],
        train=True,
        rngs={'dropout': rng},
        mutable=['batch_stats'],
    )
    terms = losses.compute_losses(outputs, batch, spec, loss_config, axis_name)
    return terms['loss'], (terms, updates['batch_stats'])

  def step(state, batch):
    rng = jax.random.fold_in(
        jax.random.fold_in(root, state['step']), lax.axis_index(axis_name)
    )
    (_, (terms, batch_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True
    )(state['params'], state['batch_stats'], batch, rng)
    if frozen is None:
      grads = lax.pmean(grads, axis_name)
    else:  # Frozen gradients are neither computed nor all-reduced.
      grads = jax.tree.map(
          lambda g, f: jnp.zeros_like(g) if f else lax.pmean(g, axis_name),
          grads,
          frozen,
      )
    terms = lax.pmean(terms, axis_name)
    updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
    new = {
        'step': state['step'],
        'params': optax.apply_updates(state['params'], updates),
        'batch_stats': batch_stats,
        'opt_state': opt_state,
    }
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(terms['loss']) & jnp.isfinite(grad_norm)
    new = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, state)
    new['step'] = state['step'] + 1
    metrics = dict(
        terms, grad_norm=grad_norm, finite=finite.astype(jnp.float32)
    )
    return new, metrics

  return step


# --- runners -----------------------------------------------------------------
class Runner:
  """Runs a per-replica step over `devices` (default: all devices).

  The state and the metrics are replicated global arrays over `mesh`
  (sharding `replicated`), which is what checkpoints store; the batch
  arrives as process-local numpy. The first `step` compiles ahead of
  time and waits for every process to finish compiling before running (the
  first collective of a CPU/gloo job times out after 30 s otherwise).
  """

  def __init__(self, per_replica_step, devices=None):
    self.devices = list(devices or jax.devices())
    self.mesh = Mesh(np.array(self.devices), (AXIS,))
    self.replicated = NamedSharding(self.mesh, P())
    self.local_devices = [
        d for d in self.devices if d.process_index == jax.process_index()
    ]
    self._batch_sharding = NamedSharding(self.mesh, P(AXIS))
    self._mapped = self._map(per_replica_step)
    self._compiled = None

  @property
  def num_devices(self):
    return len(self.devices)

  def step(self, state, batch):
    """(state, device batch) -> (new state, metrics); `state` is donated."""
    if self._compiled is None:
      self._compiled = self._mapped.lower(state, batch).compile()
      distributed.barrier('step_compiled')
    return self._compiled(state, batch)

  def put_state(self, state):
    return jax.device_put(state, self.replicated)

  def check_local_batch(self, batch):
    """Clear errors for a process-local batch of the wrong form."""
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
      raise KeyError(
          f'The training batch lacks {missing}; the pipeline must '
          f'yield {", ".join(BATCH_KEYS)}.'
      )
    sizes = {k: np.shape(batch[k])[0] for k in BATCH_KEYS}
    size = sizes['template']
    if len(set(sizes.values())) != 1 or size % len(self.local_devices):
      raise ValueError(
          f'Process-local batch sizes {sizes} must be equal and divide by '
          f'the {len(self.local_devices)} local devices.'
      )

  def put_batch(self, batch):
    """Process-local numpy batch -> global arrays sharded over 'data'."""
    self.check_local_batch(batch)
    return {
        k: jax.make_array_from_process_local_data(
            self._batch_sharding, self._layout(np.asarray(batch[k]))
        )
        for k in BATCH_KEYS
    }

  def _layout(self, x):
    return x

  def metrics(self, metrics):
    """Device metrics -> {name: float} on the host."""
    return {
        k: float(np.asarray(v.addressable_data(0))) for k, v in metrics.items()
    }


class PmapRunner(Runner):
  """jax.pmap over the devices; the batch is split along a leading
  device axis, the state goes in and out unmapped (in/out_axes None).
  Compiled ahead of time, pmap takes and returns global arrays also with
  several processes (called directly, it would return process-local ones,
  which orbax cannot save)."""

  def _map(self, per_replica_step):
    devices = None if self.devices == jax.devices() else self.devices
    return jax.pmap(
        per_replica_step,
        axis_name=AXIS,
        devices=devices,
        in_axes=(None, 0),
        out_axes=(None, None),
        donate_argnums=(0,),
    )

  def _layout(self, x):
    """Pairs -> (local devices, pairs per device, ...), pmap's mapped axis."""
    return x.reshape((len(self.local_devices), -1) + x.shape[1:])


class ShardMapRunner(Runner):
  """jax.jit(jax.shard_map) over a Mesh with Auto axes."""

  def _map(self, per_replica_step):
    mapped = jax.shard_map(
        per_replica_step,
        mesh=self.mesh,
        in_specs=(P(), P(AXIS)),
        out_specs=(P(), P()),
        check_vma=False,
    )
    return jax.jit(mapped, donate_argnums=(0,))


RUNNERS = {'pmap': PmapRunner, 'shard_map': ShardMapRunner}


def make_runner(parallel, per_replica_step, devices=None):
  """The runner for config.train.parallel ('pmap' | 'shard_map')."""
  if parallel not in RUNNERS:
    raise ValueError(
        f"config.train.parallel={parallel!r}: use 'pmap' or " "'shard_map'."
    )
  return RUNNERS[parallel](per_replica_step, devices)


def check_global_batch(global_batch, num_devices, num_processes):
  """Global batch = per-device batch x device count; explains a mismatch."""
  if global_batch % num_devices or global_batch % num_processes:
    per_device = max(1, global_batch // num_devices)
    raise ValueError(
        f'config.train.batch_size={global_batch} (the global batch) must be a '
        f'multiple of the device count {num_devices} ({num_processes} '
        f'process(es)): each device holds batch_size / devices pairs. Use '
        f'e.g. --config.train.batch_size={per_device * num_devices} or '
        f'{(per_device + 1) * num_devices}.'
    )
  return global_batch // num_processes


def synthetic_batch(config, batch_size, rng, vocab_size):
  """Random pairs in the input pipeline's format (benchmarks and tests).

  rng: a numpy Generator. Every 4th target is absent; text ids are drawn in
  [1, vocab_size) with random lengths.
  """
  tz, sx, t = (
      config.model.template_size,
      config.model.search_size,
      config.text.max_len,
  )
  lengths = rng.integers(3, t + 1, size=batch_size)
  mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.int32)
  ids = rng.integers(1, vocab_size, size=(batch_size, t)).astype(np.int32)
  centre = rng.uniform(0.3, 0.7, size=(batch_size, 2))
  size = rng.uniform(0.02, 0.3, size=(batch_size, 2))
  return {
      'template': rng.integers(0, 256, (batch_size, tz, tz, 3), np.uint8),
      'search': rng.integers(0, 256, (batch_size, sx, sx, 3), np.uint8),
      'search_box': np.concatenate([centre, size], 1).astype(np.float32),
      'visible': np.arange(batch_size) % 4 != 3,
      'text_ids': ids * mask,
      'text_mask': mask,
  }
