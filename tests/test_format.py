"""The whole tree keeps one code style: pyink (Google style, 2 spaces, 80
columns; settings in pyproject.toml [tool.pyink])."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every Python file of the project (a folder is searched by pyink itself,
# which skips what .gitignore names, e.g. runs/ and virtualenvs).
PATHS = (
    'benchmarks',
    'configs',
    'cost_jax',
    'input_pipeline',
    'main.py',
    'tests',
    'torch_reference',
)


def test_paths_exist():
  missing = [p for p in PATHS if not os.path.exists(os.path.join(ROOT, p))]
  assert not missing, missing


def test_tree_passes_pyink():
  proc = subprocess.run(
      [sys.executable, '-m', 'pyink', '--check', '--quiet', *PATHS],
      cwd=ROOT,
      capture_output=True,
      text=True,
      check=False,
  )
  assert (
      proc.returncode == 0
  ), f'{proc.stderr}\nFormat them: pyink {" ".join(PATHS)}'
