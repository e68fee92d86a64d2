"""Training: `train(config, workdir)` (docs/design.md; `main.py --mode=train`).

Top to bottom: check the batch against the devices, build the model and
optimizer, restore the latest checkpoint of WORKDIR (or initialise, loading
converted weights when the config names them), then loop: step, log
(stdout on process 0: steps/s, pairs/s, ETA, every loss term; TensorBoard
events and WORKDIR/metrics.jsonl), checkpoint, and react to SIGTERM/SIGINT
(save, then exit). A loss-curve PNG is written at the end.

Multi-host: every process runs this same function after
`cost_jax.distributed.maybe_initialize`; each reads its own share of the
global batch (config.train.batch_size // process count) from
`batch_iterator_fn(config, process_index, process_count, start_step)`.
"""

import logging
import os
import signal

from etils import epath
import jax
import numpy as np

from jax.experimental import multihost_utils

from cost_jax import checkpointing
from cost_jax import convert
from cost_jax import optim
from cost_jax import train_log
from cost_jax import train_step
from cost_jax import validation
from cost_jax.models import factory
from input_pipeline import pairs
from input_pipeline import sources as sources_lib
from input_pipeline.readers import load_dataset

ON_NAN = ('stop', 'skip')


# --- inputs ------------------------------------------------------------------
def default_batch_iterator(config, process_index, process_count, start_step):
  """The tf.data pair pipeline (input_pipeline/pairs.py)."""
  return pairs.make_train_iterator(
      config,
      process_index=process_index,
      process_count=process_count,
      start_step=start_step,
  )


# --- initial weights ---------------------------------------------------------
def init_sources(config) -> list:
  """[(what, path)] of converted weights to load, in order (later wins)."""
  t = config.train
  sources = [('backbone', t.init_backbone), ('transt', t.init_transt)]
  text = t.init_text
  if not text and config.model.language and config.text.pretrained:
    text = factory.text_model_path(config)
  sources.append(('text', text))
  return [(what, path) for what, path in sources if path]


def initial_variables(config, model, spec):
  """Random init, then cost_jax.convert.load_converted for each source."""
  variables = jax.device_get(
      factory.init_variables(model, spec, jax.random.key(config.seed))
  )
  sources = init_sources(config)
  if not sources:
    return variables
  structure = jax.tree.structure(variables)
  for what, path in sources:
    logging.info('Initialising %s from %s', what, path)
    variables = convert.load_converted(path, variables)
    if jax.tree.structure(variables) != structure:
      raise ValueError(
          f'Converted weights {path!r} ({what}) do not match '
          'the network of this config.'
      )
  return variables


def check_initial_backbone(config):
  """A run that starts from step 0 with a random backbone must say so.

  The paper and TransT start from ImageNet weights; a random ResNet-50
  trains for days to a worse tracker, so this stops unless
  config.train.from_scratch is set (the demo and smoke sizes set it).
  """
  t = config.train
  if t.init_backbone or t.init_transt or t.get('from_scratch', False):
    return
  raise ValueError(
      'error: the backbone would start from random weights (no '
      'config.train.init_backbone or init_transt). Fix: convert ImageNet '
      'ResNet-50 weights with `python -m cost_jax.convert resnet50 '
      '--input=resnet50-19c8e357.pth --output=checkpoints/'
      'resnet50_backbone.safetensors` and pass --config.train.init_backbone='
      'checkpoints/resnet50_backbone.safetensors (checkpoints/README.md), or '
      'set --config.train.from_scratch=True to train from scratch on '
      'purpose.'
  )


def restore_or_initialize(config, ckpts, setup):
  """The latest checkpoint of the workdir, else a fresh state (step 0)."""
  state = ckpts.restore(setup.abstract_state)
  if state is None:
    check_initial_backbone(config)
    state = train_step.state_from_variables(
        initial_variables(config, setup.model, setup.spec),
        setup.tx,
        setup.runner.replicated,
    )
  return state


# --- validation --------------------------------------------------------------
def make_validator(config):
  """A `cost_jax.validation.Validator` on config.data.val_root (process 0,
  when config.train.val_every > 0), else None."""
  root = config.data.get('val_root', '')
  if not root or config.train.get('val_every', 0) <= 0:
    return None
  if jax.process_index() != 0:
    return None
  name = config.data.get('val_dataset', '') or config.data.eval_dataset
  sequences = load_dataset(name, root, config.data.eval_split)
  return validation.Validator(config, sequences)


def host_variables(state):
  """params + batch_stats of a replicated state as host numpy."""
  take = lambda x: np.asarray(x.addressable_data(0))
  return {
      'params': jax.tree.map(take, state['params']),
      'batch_stats': jax.tree.map(take, state['batch_stats']),
  }


def run_validation(validator, state, done, writer):
  scores = validator(host_variables(state))
  writer.write(done, scores)
  print(
      f'validation at step {done}: AUC {scores["val_auc"]:.1f} '
      f'P@20 {scores["val_p20"]:.1f} (NCC {scores["val_auc_ncc"]:.1f}, '
      f'static {scores["val_auc_static"]:.1f}; {scores["val_s"]:.1f} s)',
      flush=True,
  )


# --- signals -----------------------------------------------------------------
class StopRequests:
  """Turns SIGTERM/SIGINT into a flag the loop polls (all processes agree);
  a second signal kills the process at once (e.g. when a step hangs)."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
    self.signum = signum

  def requested(self) -> bool:
    flag = self.signum is not None
    if jax.process_count() > 1:
      flag = bool(np.any(multihost_utils.process_allgather(np.int32(flag))))
      self.signum = self.signum or (signal.SIGTERM if flag else None)
    return flag


# --- the loop ----------------------------------------------------------------
def check_config(config):
  if config.train.on_nan not in ON_NAN:
    raise ValueError(
        f'config.train.on_nan={config.train.on_nan!r}: use one ' f'of {ON_NAN}.'
    )
  if config.train.log_every < 1 or config.train.ckpt_every < 1:
    raise ValueError('config.train.log_every and ckpt_every must be >= 1.')


def handle_nonfinite(rows, first_step, config, ckpts):
  """Applies config.train.on_nan to a window of host metrics; returns the
  finite rows."""
  bad = [first_step + i for i, r in enumerate(rows) if not r['finite']]
  if not bad:
    return rows
  if config.train.on_nan == 'stop':
    ckpts.wait()
    last = ckpts.path(ckpts.latest_step()) or 'none (no checkpoint yet)'
    raise FloatingPointError(
        f'Non-finite loss or gradient at step {bad[0]} '
        f'({rows[bad[0] - first_step]}); the run stopped. Last good '
        f'checkpoint: {last}. Set --config.train.on_nan=skip to skip such '
        'steps instead.'
    )
  logging.warning(
      'Skipped non-finite steps %s (config.train.on_nan=skip).', bad
  )
  return [r for r in rows if r['finite']]


def train(config, workdir, batch_iterator_fn=None, devices=None):
  """Trains `config` in `workdir` (resuming its latest checkpoint); returns
  the final train state as replicated global arrays."""
  check_config(config)
  if batch_iterator_fn is None:
    sources_lib.check_sources(
        config
    )  # Missing roots stop the run before setup.
  batch_iterator_fn = batch_iterator_fn or default_batch_iterator
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  is_chief = jax.process_index() == 0
  num_steps = optim.total_steps(config)

  setup = train_step.setup(config, devices)
  runner = setup.runner
  local_batch = train_step.check_global_batch(
      config.train.batch_size, runner.num_devices, jax.process_count()
  )

  ckpts = checkpointing.Checkpoints(workdir, config)
  state = restore_or_initialize(config, ckpts, setup)
  start = int(np.asarray(state['step'].addressable_data(0)))
  if is_chief:
    print(
        f'{"Resuming from" if start else "Starting at"} step {start} of '
        f'{num_steps}: global batch {config.train.batch_size} on '
        f'{runner.num_devices} device(s), {jax.process_count()} '
        f'process(es), {config.train.parallel}; workdir {workdir}',
        flush=True,
    )

  writer = train_log.MetricWriter(workdir, is_chief)
  progress = train_log.ProgressLog(
      writer, config, setup.schedules, num_steps, start, is_chief
  )
  validator = make_validator(config)
  val_every = config.train.get('val_every', 0)
  batches = iter(
      batch_iterator_fn(config, jax.process_index(), jax.process_count(), start)
  )
  state = runner.put_state(state)
  pending = []  # Device metrics not fetched yet.
  with StopRequests() as stop:
    for step in range(start, num_steps):
      batch = next(batches)
      if np.shape(batch['template'])[0] != local_batch:
        raise ValueError(
            f'The batch source gave {np.shape(batch["template"])[0]} pairs to '
            f'process {jax.process_index()}; expected batch_size / processes '
            f'= {local_batch}.'
        )
      state, metrics = runner.step(state, runner.put_batch(batch))
      pending.append(metrics)
      done = step + 1
      log_now = done % config.train.log_every == 0 or done == num_steps
      save_now = done % config.train.ckpt_every == 0 or done == num_steps
      stopping = stop.requested()
      if log_now or save_now or stopping:  # Fetching syncs with the device.
        fetched = [runner.metrics(m) for m in pending]
        progress.rows += handle_nonfinite(
            fetched, done - len(pending) + 1, config, ckpts
        )
        pending = []
      if log_now:
        progress.log(done)
      if validator and (done % val_every == 0 or done == num_steps):
        run_validation(validator, state, done, writer)
      if save_now or stopping:
        ckpts.save(done, state, force=True)
      if stopping:
        ckpts.close()
        if is_chief:
          print(
              f'{signal.Signals(stop.signum).name} at step {done}: saved '
              f'{ckpts.path(done)}; run the same command again to resume.',
              flush=True,
          )
        raise SystemExit(128 + stop.signum)
  ckpts.close()
  if is_chief:
    png = train_log.save_loss_curve(
        writer.jsonl, epath.Path(workdir) / 'loss_curve.png'
    )
    print(
        f'Done: {num_steps} steps; checkpoints in {ckpts.directory}; loss '
        f'curve {png}',
        flush=True,
    )
  return state
