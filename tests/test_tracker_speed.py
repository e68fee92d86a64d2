"""benchmarks/tracker_speed.py --quick runs and prints its tables (not a speed check)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tracker_speed_quick(capsys):
  spec = importlib.util.spec_from_file_location(
      'tracker_speed', os.path.join(ROOT, 'benchmarks', 'tracker_speed.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.main(['--quick', '--dtypes=float32', '--torch=off', '--repeats=1']) == 0
  out = capsys.readouterr().out
  assert 'single stream' in out and 'batched' in out
  assert out.count('smoke ') >= 3  # one single-stream row, two batched rows (B = 1, 4)
