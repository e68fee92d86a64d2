"""Checkpoints and resume: exact resume after SIGKILL, SIGTERM saves, a kill
during an async save, a workdir of another config, another device count, an
unreadable newest checkpoint.

The same file is the child process: `python tests/test_resume.py
train_until_killed ROOT WORKDIR` or `save_then_die DIR`.
"""

import glob
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cost
from cost_jax import checkpointing
from cost_jax import train
from cost_jax import train_step
from cost_jax.tracking import tracker
from tests import batches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STEPS = 6
KILL_AFTER = 3
BIG = 4 << 20  # float32 entries per array of the async-save test (16 MiB).


def dummy_state(value, sharding):
  """A train-state-shaped tree of arrays filled with `value`."""
  fill = lambda shape: jax.device_put(
      jnp.full(shape, value, jnp.float32), sharding
  )
  return {
      'step': jax.device_put(jnp.int32(value), sharding),
      'params': {f'w{i}': fill((BIG,)) for i in range(4)},
      'batch_stats': {'mean': fill((8,))},
      'opt_state': {'mu': fill((8,))},
  }


# --- child processes ---------------------------------------------------------
def train_until_killed(root, workdir):
  """Trains with a checkpoint at step 3, then waits for more data forever."""
  config = batches.tiny_config(root)
  config.train.ckpt_every = KILL_AFTER
  train.train(config, workdir, batches.blocking_iterator(KILL_AFTER))


def save_then_die(directory):
  """Completes a save of step 1, starts an async save of step 2, SIGKILLs."""
  config = batches.tiny_config(directory)
  ckpts = checkpointing.Checkpoints(directory, config, every=1)
  sharding = batches.replicated()
  ckpts.save(1, dummy_state(1.0, sharding), force=True)
  ckpts.wait()
  ckpts.save(2, dummy_state(2.0, sharding), force=True)
  os.kill(os.getpid(), signal.SIGKILL)


def child(*args):
  return subprocess.Popen(
      [sys.executable, os.path.abspath(__file__), *args],
      cwd=ROOT,
      env=batches.subprocess_env(devices=4),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
  )


# --- tests -------------------------------------------------------------------
def saving_config(root):
  """The tiny config with checkpoints at steps 3 and 6."""
  config = batches.tiny_config(root)
  config.train.ckpt_every = KILL_AFTER
  return config


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
  """6 uninterrupted steps in process, checkpoints at 3 and 6:
  (root, workdir, params)."""
  batches.enable_compilation_cache()
  root = str(tmp_path_factory.mktemp('resume'))
  workdir = os.path.join(root, 'full')
  state = train.train(saving_config(root), workdir, batches.batch_iterator)
  return root, workdir, batches.flat_params(state)


def test_run_writes_logs_and_loss_curve(full_run):
  _, workdir, _ = full_run
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert [r['step'] for r in rows] == list(range(1, STEPS + 1))
  assert {
      'loss',
      'coa',
      'reg',
      'ce',
      'l1',
      'giou',
      'steps_per_s',
      'pairs_per_s',
      'lr_default',
  } <= set(rows[0])
  assert os.path.getsize(os.path.join(workdir, 'loss_curve.png')) > 0
  if os.environ.get('COST_JAX_TENSORBOARD') != '0':
    pytest.importorskip('tensorflow')
    assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))


def test_resume_after_sigkill_is_exact(full_run):
  root, _, expected = full_run
  workdir = os.path.join(root, 'killed')
  proc = child('train_until_killed', root, workdir)
  done = os.path.join(workdir, 'checkpoints', str(KILL_AFTER))
  deadline = time.time() + 240
  while not os.path.isdir(done) and proc.poll() is None:
    assert time.time() < deadline, 'the child never saved step 3'
    time.sleep(0.5)
  assert proc.poll() is None, proc.communicate()[0][-3000:]
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  assert proc.returncode == -signal.SIGKILL
  state = train.train(
      batches.tiny_config(root), workdir, batches.batch_iterator
  )
  assert int(state['step']) == STEPS
  got = batches.flat_params(state)
  for name, value in expected.items():
    np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_sigterm_saves_a_checkpoint_before_exit(full_run):
  root = full_run[0]
  workdir = os.path.join(root, 'sigterm')

  def terminated_after_two(config, index, count, start):
    source = batches.batch_iterator(config, index, count, start)
    for i in range(STEPS):
      if i == 2:
        os.kill(os.getpid(), signal.SIGTERM)
      yield next(source)

  config = batches.tiny_config(root)
  with pytest.raises(SystemExit) as exit_info:
    train.train(config, workdir, terminated_after_two)
  assert exit_info.value.code == 128 + signal.SIGTERM
  assert checkpointing.Checkpoints(workdir, config).latest_step() == 3


def test_kill_during_async_save_keeps_last_complete_checkpoint(tmp_path):
  proc = child('save_then_die', str(tmp_path))
  output = proc.communicate(timeout=240)[0]
  assert proc.returncode == -signal.SIGKILL, output[-3000:]
  ckpt_dir = tmp_path / 'checkpoints'
  step_two_done = (ckpt_dir / '2').is_dir()
  ckpts = checkpointing.Checkpoints(
      str(tmp_path), batches.tiny_config(str(tmp_path))
  )
  latest = ckpts.latest_step()
  assert latest == (2 if step_two_done else 1), os.listdir(ckpt_dir)
  sharding = batches.replicated(jax.devices()[:1])
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      jax.eval_shape(lambda: dummy_state(0.0, sharding)),
  )
  restored = ckpts.restore(abstract)
  assert float(restored['params']['w3'][-1]) == float(latest)
  assert int(restored['step']) == latest


def test_checkpoint_of_another_config_is_refused(full_run):
  root, workdir, _ = full_run
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  before = sorted(
      (p, os.path.getmtime(p))
      for p in glob.glob(os.path.join(ckpt_dir, '**'), recursive=True)
  )
  config = batches.tiny_config(root)
  config.model.hidden_dim = 48
  with pytest.raises(
      checkpointing.CheckpointMismatchError, match='another configuration'
  ) as error:
    train.train(config, workdir, batches.batch_iterator)
  assert 'Nothing was changed' in str(error.value)
  assert (
      'bbox_embed/layers_0/kernel: saved (32, 32), this config (48, 48)'
      in str(error.value)
  )
  after = sorted(
      (p, os.path.getmtime(p))
      for p in glob.glob(os.path.join(ckpt_dir, '**'), recursive=True)
  )
  assert after == before


def test_restore_on_another_device_count(full_run):
  root, workdir, expected = full_run
  config = batches.tiny_config(root)
  setup = train_step.setup(config, devices=jax.devices()[:1])
  state = checkpointing.Checkpoints(workdir, config).restore(
      setup.abstract_state
  )
  assert int(state['step']) == STEPS
  assert len(jax.tree.leaves(state['params'])[0].devices()) == 1
  got = batches.flat_params(state)
  for name, value in expected.items():
    np.testing.assert_array_equal(got[name], value, err_msg=name)


def corrupt_copy(workdir, name, steps=(STEPS,)):
  """A copy of `workdir` whose checkpoints `steps` have their data files
  truncated to half (a partial copy, a disk fault); -> (copy, {step: files})."""
  copy = os.path.join(os.path.dirname(workdir), name)
  shutil.copytree(workdir, copy)
  for step in steps:
    for path in glob.glob(
        os.path.join(
            copy, 'checkpoints', str(step), 'state', 'ocdbt.process_0', 'd', '*'
        )
    ):
      os.truncate(path, os.path.getsize(path) // 2)
  return copy, {
      s: file_digests(os.path.join(copy, 'checkpoints', str(s))) for s in steps
  }


def file_digests(folder):
  """{relative path: sha256} of every file under `folder` (non-empty)."""
  digests = {}
  for path in glob.glob(os.path.join(folder, '**'), recursive=True):
    if os.path.isfile(path):
      with open(path, 'rb') as f:
        digests[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()
        ).hexdigest()
  assert digests, folder
  return digests


def unreadable_warnings(caplog, step_dir):
  return [
      r.getMessage()
      for r in caplog.records
      if r.levelno == logging.WARNING
      and step_dir in r.getMessage()
      and 'unreadable' in r.getMessage()
  ]


def test_tracking_skips_an_unreadable_newest_checkpoint(
    full_run, caplog, monkeypatch
):
  root, workdir, _ = full_run
  corrupt, before = corrupt_copy(workdir, 'corrupt_track')
  only_three = os.path.join(root, 'only_three')
  shutil.copytree(
      workdir,
      only_three,
      ignore=lambda d, names: ['6'] if d.endswith('checkpoints') else [],
  )
  reports = []  # What orbax's failed reads leave for sys.unraisablehook.
  monkeypatch.setattr(
      sys, 'unraisablehook', lambda u: reports.append(u.exc_value)
  )
  config = saving_config(root)
  with caplog.at_level(logging.WARNING):
    variables, info = tracker.load_weights(config, corrupt)
  time.sleep(1)  # Reads still in flight end and report (before: 'Event loop
  # is closed' from each).
  step_dir = os.path.join(corrupt, 'checkpoints', str(STEPS))
  assert info.endswith(f'@{KILL_AFTER}')
  assert len(unreadable_warnings(caplog, step_dir)) == 1, caplog.text
  assert 'left in place' in caplog.text
  assert not [r for r in reports if 'Event loop is closed' in str(r)], reports
  assert file_digests(step_dir) == before[STEPS]
  want, _ = tracker.load_weights(config, only_three)
  for name, value in batches.flat_params(want).items():
    np.testing.assert_array_equal(
        batches.flat_params(variables)[name], value, err_msg=name
    )


def test_training_resumes_exactly_from_the_newest_readable_checkpoint(
    full_run, caplog
):
  root, workdir, expected = full_run
  corrupt, before = corrupt_copy(workdir, 'corrupt_train')
  ckpt_dir = os.path.join(corrupt, 'checkpoints')
  with caplog.at_level(logging.WARNING):
    state = train.train(saving_config(root), corrupt, batches.batch_iterator)
  assert unreadable_warnings(caplog, os.path.join(ckpt_dir, str(STEPS)))
  assert int(state['step']) == STEPS
  got = batches.flat_params(state)
  for name, value in expected.items():  # As any resume from step 3: exact.
    np.testing.assert_array_equal(got[name], value, err_msg=name)
  # The unreadable step was kept (moved aside when step 6 was saved anew).
  assert file_digests(os.path.join(ckpt_dir, f'{STEPS}.unreadable')) == (
      before[STEPS]
  )
  caplog.clear()
  _, info = tracker.load_weights(saving_config(root), corrupt)
  assert info.endswith(f'@{STEPS}') and 'unreadable' not in caplog.text


def test_no_readable_checkpoint_stops_before_anything_changes(full_run):
  root, workdir, _ = full_run
  corrupt, before = corrupt_copy(workdir, 'corrupt_all', (KILL_AFTER, STEPS))
  listing = sorted(glob.glob(os.path.join(corrupt, '**'), recursive=True))
  for load in (
      lambda c: tracker.load_weights(c, corrupt),
      lambda c: train.train(c, corrupt, batches.batch_iterator),
  ):
    with pytest.raises(
        checkpointing.UnreadableCheckpointError,
        match='step 6: .*step 3: .*Nothing was changed',
    ):
      load(saving_config(root))
  assert sorted(glob.glob(os.path.join(corrupt, '**'), recursive=True)) == (
      listing
  )  # Not started afresh, nothing moved.
  for step, digests in before.items():
    assert file_digests(os.path.join(corrupt, 'checkpoints', str(step))) == (
        digests
    )


if __name__ == '__main__':
  {'train_until_killed': train_until_killed, 'save_then_die': save_then_die}[
      sys.argv[1]
  ](*sys.argv[2:])


def test_missing_dataset_roots_stop_before_anything_is_built(tmp_path):
  config = cost.get_config('paper')
  config.data.roots.lasot = str(tmp_path / 'no_lasot')
  workdir = tmp_path / 'run'
  with pytest.raises(FileNotFoundError) as error:
    train.train(config, str(workdir))
  for name in ('lasot', 'got10k', 'coco', 'trackingnet'):
    assert f'--config.data.roots.{name}=DIR' in str(error.value)
  assert 'no_lasot' in str(error.value)
  assert not workdir.exists()
