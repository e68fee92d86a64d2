"""Runs one device-check stage in its own process (device_stages.py).

The process gets its own device memory (so its peak is its own) and is
killed with its children when it overruns; its output goes to the log, its
results to a JSON file it rewrites after every item (kept after a kill).
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time

from benchmarks import portable

# The project root: stage processes import `benchmarks` from it wherever the
# check was started.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Halves XLA:CPU compile time of the smoke train step (15 -> 9 CPU s).
DRY_RUN_XLA_FLAG = '--xla_cpu_use_fusion_emitters=false'


PROBE = 'import jax; jax.numpy.zeros(1).block_until_ready()'


def accepted_xla_flag(env, flag):
  """`flag` added to XLA_FLAGS if this jaxlib knows it (else env unchanged)."""
  trial = dict(env, XLA_FLAGS=f'{env.get("XLA_FLAGS", "")} {flag}'.strip())
  try:
    probe = subprocess.run(
        [sys.executable, '-c', PROBE],
        env=trial,
        capture_output=True,
        timeout=60,
        check=False,
    )
  except subprocess.TimeoutExpired:
    return env
  return trial if probe.returncode == 0 else env


def stage_env(dry_run):
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  env['PYTHONPATH'] = os.pathsep.join(
      filter(None, [ROOT, os.environ.get('PYTHONPATH', '')])
  )
  # No preallocation: JAX and torch share a device in some stages, and the
  # process peak is then what the stage really used.
  env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
  env.setdefault('XLA_PYTHON_CLIENT_MEM_FRACTION', '0.92')
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
  if dry_run:
    env.update(JAX_PLATFORMS='cpu', JAX_DISABLE_MOST_OPTIMIZATIONS='1')
    env = accepted_xla_flag(env, DRY_RUN_XLA_FLAG)
  return env


def run_stage(name, settings, timeout_s, env, log):
  """Runs one stage process; returns its record (status, items, ...)."""
  workdir = settings['workdir']
  settings_path = os.path.join(workdir, f'{name}.settings.json')
  out_path = os.path.join(workdir, f'{name}.json')
  with open(settings_path, 'w') as f:
    json.dump(settings, f)
  start, cpu = time.time(), children_cpu_s()
  cmd = [
      sys.executable,
      '-m',
      'benchmarks.device_stages',
      name,
      settings_path,
      out_path,
      str(start + timeout_s),
  ]
  log.write(f'\n===== {name} (timeout {timeout_s:.0f} s)\n')
  log.flush()
  proc = subprocess.Popen(
      cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
  )
  try:
    rc = proc.wait(timeout=timeout_s)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)  # The stage and its children.
    proc.wait()
    rc = None
  record = {'items': {}}
  if os.path.exists(out_path):
    with open(out_path) as f:
      record = json.load(f)
  record.update(
      wall_s=time.time() - start,
      timeout_s=timeout_s,
      cpu_s=children_cpu_s() - cpu,
  )
  items = record.get('items', {}).values()
  if rc is None:
    record.update(status='timeout', reason=f'killed after {timeout_s:.0f} s')
  elif rc:
    tail = log_tail(log.name)
    record.update(
        status='oom' if portable.is_oom(tail) else 'error',
        reason=f'exit {rc}: {last_error(tail)}',
    )
  elif any(i.get('status') != 'ok' for i in items):
    record['status'] = 'partial'
  else:
    record['status'] = 'ok'
  return record


def children_cpu_s():
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def log_tail(path, size=4000):
  with open(path, 'rb') as f:
    f.seek(max(0, os.path.getsize(path) - size))
    return f.read().decode(errors='replace')


def last_error(tail):
  lines = [l for l in tail.splitlines() if l.strip()]
  return lines[-1][:300] if lines else ''
