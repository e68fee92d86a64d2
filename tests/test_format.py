"""The formatted part of the tree stays formatted: pyink (Google style, 2
spaces, 80 columns; settings in pyproject.toml [tool.pyink])."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Files and folders formatted with `pyink PATH`. Add a path once it passes
# `pyink --check PATH`; the aim is the whole tree.
FORMATTED = (
    'benchmarks/__init__.py',
    'configs/__init__.py',
    'cost_jax/analyze.py',
    'cost_jax/config_files.py',
    'cost_jax/convert/bert_folder.py',
    'cost_jax/data_roots.py',
    'cost_jax/errors.py',
    'cost_jax/evaluation',
    'cost_jax/models/__init__.py',
    'cost_jax/workflow.py',
    'input_pipeline/__init__.py',
    'input_pipeline/readers',
    'input_pipeline/sequence.py',
    'input_pipeline/stats.py',
    'input_pipeline/synth_render.py',
    'input_pipeline/synth_scene.py',
    'input_pipeline/synthetic.py',
    'input_pipeline/tfds_builders/__init__.py',
    'tests/__init__.py',
    'tests/conftest.py',
    'tests/test_analyze.py',
    'tests/test_data_roots.py',
    'tests/test_format.py',
    'tests/test_metrics.py',
    'tests/test_pack.py',
    'tests/test_readers.py',
    'tests/test_results_io.py',
    'tests/test_stats.py',
    'tests/test_synthetic.py',
)


def test_formatted_paths_exist():
  missing = [p for p in FORMATTED if not os.path.exists(os.path.join(ROOT, p))]
  assert not missing, missing


def test_formatted_paths_pass_pyink():
  proc = subprocess.run(
      [sys.executable, '-m', 'pyink', '--check', '--quiet', *FORMATTED],
      cwd=ROOT,
      capture_output=True,
      text=True,
      check=False,
  )
  assert (
      proc.returncode == 0
  ), f'{proc.stderr}\nFormat them: pyink {" ".join(FORMATTED)}'
