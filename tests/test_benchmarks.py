"""The benchmark scripts' --quick forms run and print their tables (not a
speed check)."""

import importlib.util
import json
import os
import subprocess
import sys

from configs import cost

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
  """benchmarks/<name>.py as a module."""
  spec = importlib.util.spec_from_file_location(
      f'bench_{name}', os.path.join(ROOT, 'benchmarks', f'{name}.py')
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_tracker_speed_quick(capsys):
  module = load('tracker_speed')
  assert (
      module.main(['--quick', '--dtypes=float32', '--torch=off', '--repeats=1'])
      == 0
  )
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
  rows = {
      line[:44].strip(): float(line[44:].split()[0])
      for line in capsys.readouterr().out.splitlines()
      if line.startswith('per ')
  }
  frame = sum(
      v
      for k, v in rows.items()
      if k.startswith('per frame:') and 'whole' not in k
  )
  whole = rows['per frame: whole step (track)']
  assert whole > 0 and abs(frame - whole) <= 0.02 * whole + 0.01, rows


BLOCKED = ('tensorflow', 'tensorflow_datasets', 'clu', 'ml_collections')


def test_device_check_dry_run(tmp_path):
  """Every stage of the device check runs (smoke config, CPU) in a Python
  that cannot import TensorFlow, TFDS, CLU nor ml_collections, as on the
  GPU image; both report files are written."""
  site = tmp_path / 'site'
  site.mkdir()
  (site / 'sitecustomize.py').write_text(
      'import sys\n' + ''.join(f'sys.modules[{m!r}] = None\n' for m in BLOCKED)
  )
  env = {
      k: v
      for k, v in os.environ.items()
      if k not in ('XLA_FLAGS', 'JAX_DISABLE_MOST_OPTIMIZATIONS')
  }
  env['PYTHONPATH'] = os.pathsep.join([str(site), ROOT])
  out = tmp_path / 'out'
  # A budget well above the dry run's own (110 s) so that a busy machine
  # does not skip stages: this checks that they work, not how fast.
  proc = subprocess.run(
      [
          sys.executable,
          '-m',
          'benchmarks.device_check',
          '--dry_run',
          f'--out={out}',
          '--budget_s=500',
      ],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=900,
      check=False,
  )
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  report = json.loads((out / 'device_check.json').read_text())
  assert report['machine']['config_dict'].startswith('stand-in')
  status = {n: s['status'] for n, s in report['stages'].items()}
  assert set(status.values()) == {'ok'}, (status, proc.stdout[-3000:])
  for model in ('smoke', 'smoke,no_lb'):
    f32 = report['stages']['parity']['items'][model]['jax_vs_torch_f32']
    # f32 with 'highest' precision on both sides: the end-to-end smoke
    # difference is ~1e-6 (BENCHMARKS.md), 1e-4 is the parity tests' bound.
    assert max(f32.values()) <= 1e-4, f32
  assert report['stages']['train_max_batch']['predicted'] > 0
  assert report['utilisation']
  text = (out / 'device_check.md').read_text()
  assert '| smoke,no_lb |' in text and '| batch 4 |' in text


def test_largest_batch_prediction():
  """One point: the train state is fixed and the rest grows per pair; two
  points: the line through them; rounded down to the device count."""
  predict = load('device_stages').predict_batch
  gb = 1e9
  # 10 GB at batch 10 with a 5 GB state: 0.5 GB a pair; 90 % of 50 GB.
  assert predict([(10, 10 * gb)], 5 * gb, 50 * gb, 1) == 80
  assert predict([(10, 10 * gb)], 5 * gb, 50 * gb, 8) == 80
  assert predict([(10, 10 * gb)], 5 * gb, 50 * gb, 3) == 78
  # Through (10, 10 GB) and (20, 14 GB): 6 GB + 0.4 GB a pair.
  assert predict([(20, 14 * gb), (10, 10 * gb)], 5 * gb, 50 * gb, 1) == 97
  assert predict([(10, 10 * gb)], 5 * gb, 4 * gb, 1) is None


def test_peak_table():
  peak = load('device_report').peak_for
  assert peak('NVIDIA H100 80GB HBM3', True)['f32'] == 494.7
  assert peak('NVIDIA H100 PCIe', False)['f32'] == 51.2
  assert peak('NVIDIA H200', True)['bf16'] == 989.4
  assert peak('TPU v5 lite', True)['name'] == 'TPU v5e'
  assert peak('cpu', True)['bf16'] is None
  assert peak('cpu', True, bf16=1.0)['source'] == 'flags'


def test_missing_text_folder_gets_bert_base(tmp_path):
  """Without the paper's bert-base-uncased folder the device check still
  builds the paper model: a config.json of the BERT-base architecture."""
  config = cost.get_config('paper')
  config.text.path = str(tmp_path / 'absent')
  folder = tmp_path / 'text'
  note = load('portable').ensure_text_folder(config, str(folder))
  assert 'bert-base-uncased architecture' in note
  assert config.text.path == str(folder)
  assert json.loads((folder / 'config.json').read_text())['hidden_size'] == 768
