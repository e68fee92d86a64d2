"""The benchmark scripts' --quick forms run and print their tables (not a
speed check)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
  """benchmarks/<name>.py as a module."""
  spec = importlib.util.spec_from_file_location(
      f'bench_{name}', os.path.join(ROOT, 'benchmarks', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_tracker_speed_quick(capsys):
  module = load('tracker_speed')
  assert module.main(['--quick', '--dtypes=float32', '--torch=off',
                      '--repeats=1']) == 0
  out = capsys.readouterr().out
  assert 'single stream' in out and 'batched' in out
  assert out.count('smoke ') >= 3  # 1 single-stream row, 2 batched (B=1, 4).


def test_train_step_quick(capsys):
  """JAX and the PyTorch reference step on the smoke config."""
  assert load('train_step').main(['--quick']) == 0
  out = capsys.readouterr().out
  assert 'JAX float32' in out and 'PyTorch f32 (eager)' in out
  assert out.rstrip().endswith('x')  # The speed-up column is filled.


def test_flops_stages_add_up_to_the_step(capsys):
  """XLA's per-stage counts cover the whole per-frame step."""
  assert load('flops').main(['--models=smoke']) == 0
  rows = {line[:44].strip(): float(line[44:].split()[0])
          for line in capsys.readouterr().out.splitlines()
          if line.startswith('per ')}
  frame = sum(v for k, v in rows.items()
              if k.startswith('per frame:') and 'whole' not in k)
  whole = rows['per frame: whole step (track)']
  assert whole > 0 and abs(frame - whole) <= 0.02 * whole + 0.01, rows
