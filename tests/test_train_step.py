"""The train step: pmap (4 devices) == shard_map (4) == 1 device; bf16;
non-finite steps; optimizer groups (4 fake CPU devices from conftest)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cost_jax import optim
from cost_jax import train_step
from cost_jax.models import factory
from tests import batches

# The device-count equality is checked on one step of plain SGD, whose
# update is the gradient itself: g = (params before - params after) / SGD_LR.
# Dividing by a power of two is exact; rounding the new params and their
# difference adds at most u (|p| / SGD_LR + 2 |g|) to g (u = 2**-24, |p| <= 1
# here), far below the reduction-order error bounded by GRAD_RTOL below.
SGD_LR = 2.0**10
# Gradients, loss terms and BatchNorm statistics of 4 devices and of 1 agree
# within batches.GRAD_RTOL and batches.FORWARD_RTOL (derived there).
# Measured: 4.7e-6 and 8.6e-7.
GRAD_RTOL, FORWARD_RTOL = batches.GRAD_RTOL, batches.FORWARD_RTOL
# A tensor's gradient scale is its largest |entry|, but at least this share
# of the largest of all: a tensor whose true gradient is 0 (attention key
# biases, which softmax ignores) holds only rounding noise of the sums that
# make the other gradients, and is compared at their scale.
SCALE_FLOOR = 1e-3
TERMS = ('loss', 'coa', 'ce', 'l1', 'giou', 'grad_norm')


def flat(tree):
  return batches.flat_params({'params': tree})


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  """(config, initial variables) shared by every run."""
  batches.enable_compilation_cache()
  config = batches.tiny_config(str(tmp_path_factory.mktemp('step')))
  model, spec = factory.create_model(config)
  variables = jax.device_get(
      factory.init_variables(model, spec, jax.random.key(0))
  )
  return config, variables


def adamw_step(setup, parallel, devices=None):
  """One step of train_step.setup's runner (AdamW) on global batch 0:
  (state, metrics)."""
  config, variables = setup
  config = config.copy_and_resolve_references()
  config.train.parallel = parallel
  built = train_step.setup(config, devices)
  runner = built.runner
  state = runner.put_state(
      train_step.state_from_variables(variables, built.tx, runner.replicated)
  )
  state, metrics = runner.step(
      state, runner.put_batch(batches.global_batch(config, 0))
  )
  return state, runner.metrics(metrics)


def sgd_run(setup, parallel, devices=None):
  """One plain-SGD step of the production per-replica step and runner on
  global batch 0: (runner, state, metrics, {name: gradient})."""
  config, variables = setup
  model, spec = factory.create_model(config, bn_axis_name=train_step.AXIS)
  tx = optax.sgd(SGD_LR)
  step = train_step.make_per_replica_step(
      model, spec, tx, config.loss, config.seed
  )
  runner = train_step.make_runner(parallel, step, devices)
  state = runner.put_state(
      train_step.state_from_variables(variables, tx, runner.replicated)
  )
  before = flat(state['params'])
  state, metrics = runner.step(
      state, runner.put_batch(batches.global_batch(config, 0))
  )
  after = flat(state['params'])
  grads = {k: (v - after[k]) / SGD_LR for k, v in before.items()}
  return runner, state, runner.metrics(metrics), grads


@pytest.fixture(scope='module')
def runs(setup):
  return {
      'pmap4': sgd_run(setup, 'pmap'),
      'shard_map4': sgd_run(setup, 'shard_map'),
      'one_device': sgd_run(setup, 'shard_map', jax.devices()[:1]),
  }


def worst_relative(got, want, floor=0.0):
  """max over tensors of max|got - want| / max(max|want|, floor)."""
  assert set(got) == set(want)
  return max(
      float(np.abs(got[k] - want[k]).max())
      / max(float(np.abs(want[k]).max()), floor, 1e-30)
      for k in want
  )


@pytest.mark.parametrize('name', ['pmap4', 'shard_map4'])
def test_four_devices_equal_one_device(runs, name):
  """Gradients, loss terms and BatchNorm statistics of one step agree
  within their float32 reduction-order bounds (GRAD_RTOL, FORWARD_RTOL)."""
  _, state, metrics, grads = runs[name]
  _, reference, want_metrics, want_grads = runs['one_device']
  assert int(state['step']) == 1
  scale = max(float(np.abs(g).max()) for g in want_grads.values())
  assert worst_relative(grads, want_grads, SCALE_FLOOR * scale) <= GRAD_RTOL
  assert (
      worst_relative(flat(state['batch_stats']), flat(reference['batch_stats']))
      <= FORWARD_RTOL
  )
  for term in TERMS:  # Sums of non-negative terms: relative error.
    assert metrics[term] == pytest.approx(
        want_metrics[term], rel=FORWARD_RTOL
    ), term


def test_coa_uses_the_global_batch(runs):
  """Every term is finite and the CoA term is the 4-pair InfoNCE: with
  local negatives only, 4 devices x 1 pair would have no negative at all."""
  metrics = runs['pmap4'][2]
  assert metrics['finite'] == 1
  assert metrics['coa'] == pytest.approx(
      runs['one_device'][2]['coa'], rel=FORWARD_RTOL
  )
  assert metrics['coa'] > 0.5  # ~log(3) + small, not 0.


def test_non_finite_step_keeps_the_state(setup, runs):
  config = setup[0]
  runner, state = runs['pmap4'][:2]
  before = flat(state['params'])
  batch = batches.global_batch(config, 99)
  batch['search_box'][:] = np.nan
  batch['visible'][:] = True
  state, metrics = runner.step(state, runner.put_batch(batch))
  metrics = runner.metrics(metrics)
  assert metrics['finite'] == 0 and not np.isfinite(metrics['loss'])
  assert int(state['step']) == 2
  after = flat(state['params'])
  for name, value in before.items():
    np.testing.assert_array_equal(after[name], value, err_msg=name)


def test_bfloat16_compute_runs(setup, runs):
  config = setup[0].copy_and_resolve_references()
  config.model.dtype = 'bfloat16'
  state, metrics = adamw_step(
      (config, setup[1]), 'shard_map', jax.devices()[:1]
  )
  assert metrics['finite'] == 1
  f32_loss = runs['one_device'][2]['loss']  # Same weights and batch.
  # bfloat16 rounds the activations (u = 2**-8) at each of the forward
  # pass's ~40 layers (13 convs + 13 BatchNorms, fusion, 3 convs, BERT, VLT,
  # head); independent roundings add in quadrature: sqrt(40) 2**-8 = 2.5e-2
  # <= 5e-2. Measured: 9.4e-4.
  assert metrics['loss'] == pytest.approx(f32_loss, rel=0.05)
  dtypes = {v.dtype for v in jax.tree.leaves(state['params'])}
  assert dtypes == {jnp.dtype(jnp.float32)}


def test_global_batch_must_divide_by_devices():
  assert train_step.check_global_batch(16, 4, 2) == 8
  with pytest.raises(ValueError, match='multiple of the device count 4'):
    train_step.check_global_batch(14, 4, 1)


# --- optimizer ---------------------------------------------------------------
def test_param_groups_and_lrs(setup):
  config, variables = setup
  labels = optim.param_labels(variables['params'])
  assert labels['backbone']['conv1']['kernel'] == 'backbone'
  assert set(jax.tree.leaves(labels['text_encoder'])) == {'text'}
  assert set(jax.tree.leaves(labels['vlt_pos'])) == {'default'}
  frozen = optim.param_labels(variables['params'], frozenset({'text'}))
  assert set(jax.tree.leaves(frozen['text_encoder'])) == {'frozen'}
  with pytest.raises(ValueError, match='unknown groups'):
    config_copy = config.copy_and_resolve_references()
    config_copy.train.frozen = 'bert'
    optim.frozen_components(config_copy)


def test_frozen_groups_get_no_update_and_lr_decays(setup):
  config = setup[0].copy_and_resolve_references()
  config.train.frozen = 'backbone,text'
  config.train.clip_norm = 1.0
  params = {
      'backbone': {'conv1': {'kernel': jnp.ones((3, 3))}},
      'text_encoder': {'embeddings': {'embedding': jnp.ones((5, 2))}},
      'vlt_pos': jnp.ones((4, 2)),
  }
  tx, schedules = optim.make_optimizer(config, params)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  assert float(jnp.abs(updates['backbone']['conv1']['kernel']).max()) == 0
  assert (
      float(jnp.abs(updates['text_encoder']['embeddings']['embedding']).max())
      == 0
  )
  assert float(jnp.abs(updates['vlt_pos']).max()) > 0
  assert set(schedules) == {'default'}
  decay_step = round(config.train.decay_fraction * optim.total_steps(config))
  lr = config.train.lr
  assert float(schedules['default'](decay_step - 1)) == pytest.approx(lr)
  assert float(schedules['default'](decay_step)) == pytest.approx(lr * 0.1)


def test_frozen_text_encoder_is_not_differentiated(setup):
  """A frozen group keeps its params, leaves grad_norm, and its backward
  pass disappears from the compiled step: at least the weight-gradient
  matmuls of the tiny BERT's 6 dense layers (q, k, v, output, 2 FFN)."""
  config = setup[0].copy_and_resolve_references()
  config.train.parallel = 'shard_map'
  flops, states, norms = {}, {}, {}
  for frozen in ('', 'text'):
    config.train.frozen = frozen
    built = train_step.setup(config, jax.devices()[:1])
    runner = built.runner
    state = runner.put_state(
        train_step.state_from_variables(setup[1], built.tx, runner.replicated)
    )
    batch = runner.put_batch(batches.global_batch(config, 0))
    state, metrics = runner.step(state, batch)
    hlo = runner._compiled.as_text()  # pylint: disable=protected-access
    flops[frozen] = hlo.count(' dot(') + hlo.count(' convolution(')
    states[frozen], norms[frozen] = (
        flat(state['params']),
        runner.metrics(metrics)['grad_norm'],
    )
  for name, value in flat(setup[1]['params']).items():
    if name.startswith('text_encoder/'):
      np.testing.assert_array_equal(states['text'][name], value, err_msg=name)
  assert not np.array_equal(
      states['text']['vlt_pos'], flat(setup[1]['params'])['vlt_pos']
  )
  assert norms['text'] < norms['']
  assert flops['text'] <= flops[''] - 6, flops  # Matmuls + convolutions.
