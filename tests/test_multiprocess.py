"""Multi-host training with 2 local processes x 2 CPU devices.

This file is also the worker: `python tests/test_multiprocess.py --root R
--workdir W --num_processes 2 --process_id I --coordinator HOST:PORT`
initialises jax.distributed (cost_jax.distributed), trains the tiny config
with cost_jax.train.train and writes its final params to
W/params_<process>.npz. With --num_processes 1 it is a plain run.
"""

import argparse
import faulthandler
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from cost_jax import checkpointing
from cost_jax import distributed
from cost_jax import optim
from cost_jax import train
from cost_jax import train_step
from tests import batches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STEPS = 3
TIMEOUT_S = 300
SLOW = os.environ.get('COST_JAX_SLOW_TESTS') == '1'


def mp_config(root, norm='frozen'):
  """3 steps of the tiny config, checkpoints at 2 and 3.

  norm='frozen' by default: with JAX_DISABLE_MOST_OPTIMIZATIONS=1 (the fast
  compiles the tests use), XLA's multi-process CPU programs compute slightly
  different gradients through batch-statistics BatchNorm (up to 2e-3
  relative on JAX 0.10.2; within 5e-6 with optimisations on, see
  docs/scaling.md). Global BatchNorm is tested across 4 devices in
  test_train_step.py, and across processes by the opt-in slow test here.
  Every run here, worker or in-process, trains with plain SGD
  (`use_sgd`), whose params differ between reduction orders by a bounded
  amount (batches.sgd_params_atol); AdamW's would not be bounded.
  """
  config = batches.tiny_config(root, num_steps=STEPS)
  config.train.ckpt_every = 2
  config.model.backbone.norm = norm
  return config


def use_sgd():
  """optim.make_optimizer -> batches.sgd_optimizer in this process."""
  optim.make_optimizer = batches.sgd_optimizer


@pytest.fixture(autouse=True)
def plain_sgd(monkeypatch):
  """The in-process runs and restores use the workers' optimizer."""
  monkeypatch.setattr(optim, 'make_optimizer', batches.sgd_optimizer)


# --- worker ------------------------------------------------------------------
def worker(args):
  use_sgd()
  if args.num_processes > 1:
    distributed.maybe_initialize(
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        heartbeat_timeout_s=args.heartbeat,
    )
  config = mp_config(args.root, args.norm)
  iterator = batches.batch_iterator
  if args.die_after is not None:
    iterator = batches.dying_iterator(
        args.die_after, victim=1, wait_s=args.die_wait
    )
  state = train.train(config, args.workdir, batch_iterator_fn=iterator)
  np.savez(
      os.path.join(args.workdir, f'params_{jax.process_index()}.npz'),
      **batches.flat_params(state),
  )


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def launch(
    root,
    workdir,
    processes=2,
    norm='frozen',
    die_after=None,
    heartbeat=None,
    optimize=False,
    die_wait=0.0,
):
  """Starts the worker processes (2 CPU devices each when several)."""
  coordinator = f'127.0.0.1:{free_port()}'
  env = batches.subprocess_env(devices=4 // processes)
  if optimize:
    env['JAX_DISABLE_MOST_OPTIMIZATIONS'] = '0'
  procs = []
  for i in range(processes):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        '--root',
        root,
        '--workdir',
        workdir,
        '--coordinator',
        coordinator,
        '--num_processes',
        str(processes),
        '--process_id',
        str(i),
        '--norm',
        norm,
    ]
    if die_after is not None:
      cmd += ['--die_after', str(die_after), '--die_wait', str(die_wait)]
    if heartbeat:
      cmd += ['--heartbeat', str(heartbeat)]
    procs.append(
        subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    )
  return procs


def wait_all(procs, timeout=TIMEOUT_S):
  outputs = []
  try:
    for p in procs:
      outputs.append(p.communicate(timeout=timeout)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  return outputs


def run_ok(root, workdir, **kw):
  """Runs the workers to completion; (params per process, outputs)."""
  procs = launch(root, workdir, **kw)
  outputs = wait_all(procs)
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  params = [
      dict(np.load(os.path.join(workdir, f'params_{i}.npz')))
      for i in range(len(procs))
  ]
  return params, outputs


# --- tests -------------------------------------------------------------------
def test_distributed_flags_and_env():
  assert not distributed.wanted(env={})
  assert not distributed.wanted(enabled=False, env={})
  assert distributed.wanted(enabled=True, env={})
  assert distributed.wanted(enabled=False, env={'COST_DISTRIBUTED': '1'})
  assert distributed.wanted(env={'JAX_COORDINATOR_ADDRESS': 'h:1'})
  assert distributed.initialize_kwargs(
      'h:1', 2, 1, env={'COST_JAX_HEARTBEAT_TIMEOUT': '7'}
  ) == {
      'coordinator_address': 'h:1',
      'num_processes': 2,
      'process_id': 1,
      'heartbeat_timeout_seconds': 7,
  }
  with pytest.raises(ValueError, match='together'):
    distributed.initialize_kwargs('h:1', None, 0, env={})
  with pytest.raises(ValueError, match=r'in \[0, 2\)'):
    distributed.initialize_kwargs('h:1', 2, 2, env={})
  assert distributed.maybe_initialize(False, env={}) is False


@pytest.fixture(scope='module')
def two_process_run(tmp_path_factory):
  """A 2-process run in which process 1 SIGKILLs itself when the loop asks
  for batch 2 (after the step-2 checkpoint), then the same command again:
  (root, workdir, params per process, outputs, the first launch's
  (return codes, outputs))."""
  root = str(tmp_path_factory.mktemp('mp'))
  workdir = os.path.join(root, 'run')
  batches.tiny_text_folder(root)
  start = time.time()
  procs = launch(root, workdir, die_after=2, die_wait=5, heartbeat=5)
  # TIMEOUT_S, not less: with a cold compilation cache (a new
  # --xla_cpu_max_isa) on a loaded 2-core machine this launch took > 120 s.
  died = wait_all(procs)
  died = ([p.returncode for p in procs], died)
  print(f'the survivor exited {time.time() - start:.1f} s after the launch')
  params, outputs = run_ok(root, workdir)
  print(
      f'2 processes x 2 devices, {STEPS} steps with a death and a '
      f'relaunch: {time.time() - start:.1f} s'
  )
  return root, workdir, params, outputs, died


def test_dead_process_stops_the_other(two_process_run):
  """Process 0 exits with JAX's message instead of hanging."""
  codes, outputs = two_process_run[4]
  assert codes[1] == -signal.SIGKILL
  assert codes[0] != 0, outputs[0][-3000:]
  assert 'another task died' in outputs[0], outputs[0][-3000:]


def test_relaunch_resumes_from_the_last_checkpoint(two_process_run):
  outputs = two_process_run[3]
  assert f'Resuming from step 2 of {STEPS}' in outputs[0], outputs[0][-3000:]


def test_processes_agree_and_only_chief_logs(two_process_run):
  _, workdir, params, outputs, _ = two_process_run
  # Bit-equal: the all-reduced gradients are replicated, and both processes
  # then run the same program on them.
  for name, value in params[0].items():
    np.testing.assert_array_equal(value, params[1][name], err_msg=name)
  assert f'step {STEPS}/{STEPS}' in outputs[0]
  assert f'step {STEPS}/{STEPS}' not in outputs[1]
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    assert len(f.readlines()) == STEPS  # Written once, by process 0.


def test_equals_one_process_four_devices(two_process_run, tmp_path):
  """The 2-process run (killed, then resumed) ends where an uninterrupted
  1-process x 4-device run of the same global batches does."""
  batches.enable_compilation_cache()
  root, _, params, _, _ = two_process_run
  config = mp_config(root)
  state = train.train(config, str(tmp_path), batches.batch_iterator)
  assert jax.device_count() == 4 and jax.process_count() == 1
  batches.assert_sgd_runs_close(
      params[0], batches.flat_params(state), str(tmp_path), config.train.lr
  )


def test_checkpoint_restores_in_one_process(two_process_run):
  root, workdir, params, _, _ = two_process_run
  config = mp_config(root)
  ckpts = checkpointing.Checkpoints(workdir, config)
  assert ckpts.latest_step() == STEPS
  state = ckpts.restore(train_step.setup(config).abstract_state)
  assert int(state['step']) == STEPS
  restored = batches.flat_params(state)
  for name, value in params[0].items():  # Bit-equal: stored as saved.
    np.testing.assert_array_equal(restored[name], value, err_msg=name)


@pytest.mark.skipif(
    not SLOW,
    reason='slow (optimised compiles, ~5 min): set ' 'COST_JAX_SLOW_TESTS=1',
)
def test_global_batch_norm_across_processes_optimized(tmp_path):
  root = str(tmp_path)
  batches.tiny_text_folder(root)
  two, _ = run_ok(root, os.path.join(root, 'two'), norm='batch', optimize=True)
  one, _ = run_ok(
      root, os.path.join(root, 'one'), processes=1, norm='batch', optimize=True
  )
  batches.assert_sgd_runs_close(
      two[0], one[0], os.path.join(root, 'one'), mp_config(root).train.lr
  )


def main():
  faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: Python stacks.
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--root', required=True)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--coordinator', default=None)
  parser.add_argument('--num_processes', type=int, default=1)
  parser.add_argument('--process_id', type=int, default=0)
  parser.add_argument('--norm', default='frozen')
  parser.add_argument('--die_after', type=int, default=None)
  parser.add_argument('--die_wait', type=float, default=0.0)
  parser.add_argument('--heartbeat', type=int, default=None)
  worker(parser.parse_args())


if __name__ == '__main__':
  main()
