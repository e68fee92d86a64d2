"""`--mode=evaluate` and `--mode=track` with WORKDIR a URL (gs://... on a TPU
pod), not a local folder: every output goes through etils.epath.

There is no bucket here, so the test registers a URL scheme of its own,
``fakebucket://``, that behaves like a bucket for the code under test:

- etils.epath maps ``fakebucket://b/x`` onto ``<tmp>/bucket/b/x`` (a backend
  that rewrites the URL, then uses the local file system).
- Code that treats the URL as a plain string (``os.path``, ``open``,
  ``os.makedirs``, ``os.replace``) does what it would do with gs://: it
  writes a relative folder ``fakebucket:/b/x`` under the current directory
  (or fails). The test runs in an empty current directory and checks that
  nothing appears there and that the outputs are in the bucket.
- Orbax hands array paths to TensorStore as ``path.as_posix()``, and
  TensorStore has drivers for gs:// but none for this scheme, so the fake
  path's ``as_posix()`` is the mapped local folder: orbax reads the
  checkpoint's arrays from the bucket's files while its other file access
  (metadata, listing steps) goes through the URL. ``str()`` and
  ``os.fspath()`` stay the URL, so string code built from it still goes
  wrong as it would on gs://.
"""

import json
import os

from etils import epath
from etils.epath import backend as backend_lib
from etils.epath import gpath
import jax
import numpy as np
import pytest

from cost_jax import evaluate
from cost_jax import run_config
from cost_jax.evaluation import results_io
from cost_jax.tracking import video
from cost_jax.tracking.tracker import Tracker
from input_pipeline import synthetic
from input_pipeline.readers import load_dataset
from tests.test_tracker import save_checkpoint

SCHEME = 'fakebucket'
PREFIX = f'{SCHEME}://'
_BUCKET = {'root': None}  # the local folder behind fakebucket://, per test


def _local(path) -> str:
  """The local file behind a fakebucket:// URL; other paths unchanged."""
  path = os.fspath(path)
  if not path.startswith(PREFIX):
    return path
  if _BUCKET['root'] is None:
    raise OSError(f'{path}: no fake bucket in this test')
  return os.path.join(_BUCKET['root'], path[len(PREFIX) :])


def _url(local: str) -> str:
  """The fakebucket:// URL of a local file inside the bucket."""
  return PREFIX + os.path.relpath(local, _BUCKET['root'])


class _BucketBackend(backend_lib.Backend):
  """The local file system behind fakebucket:// URLs (and plain paths)."""

  _os = backend_lib.os_backend

  def open(self, path, mode):
    return self._os.open(_local(path), mode)

  def exists(self, path):
    return self._os.exists(_local(path))

  def isdir(self, path):
    return self._os.isdir(_local(path))

  def listdir(self, path):
    return self._os.listdir(_local(path))

  def glob(self, path):
    found = self._os.glob(_local(path))
    return [_url(p) for p in found] if str(path).startswith(PREFIX) else found

  def walk(self, top, *, top_down=True, on_error=None):
    for root, dirs, files in self._os.walk(
        _local(top), top_down=top_down, on_error=on_error
    ):
      root = os.fspath(root)
      yield (_url(root) if str(top).startswith(PREFIX) else root), dirs, files

  def makedirs(self, path, *, exist_ok=False, mode=None):
    self._os.makedirs(_local(path), exist_ok=exist_ok, mode=mode)

  def mkdir(self, path, *, exist_ok=False, mode=None):
    self._os.mkdir(_local(path), exist_ok=exist_ok, mode=mode)

  def rmtree(self, path):
    self._os.rmtree(_local(path))

  def remove(self, path):
    self._os.remove(_local(path))

  def rename(self, path, dst):
    self._os.rename(_local(path), _local(dst))

  def replace(self, path, dst):
    self._os.replace(_local(path), _local(dst))

  def copy(self, path, dst, overwrite):
    self._os.copy(_local(path), _local(dst), overwrite)

  def stat(self, path):
    return self._os.stat(_local(path))


_BACKEND = _BucketBackend()


@epath.register_path_cls(PREFIX)
class FakeBucketPath(gpath.PosixGPath):
  """``fakebucket://b/x``: parts ('/', 'fakebucket', 'b', 'x'), as gs:// paths."""

  def __new__(cls, *parts):
    text = '/'.join(os.fspath(p) for p in parts)
    if text.startswith(PREFIX):
      parts = (f'/{SCHEME}/{text[len(PREFIX):]}',)
    return super().__new__(cls, *parts)

  @property
  def _uri_scheme(self):
    parts = self.parts
    return SCHEME if parts[:2] == ('/', SCHEME) else None

  @property
  def _backend(self):
    return _BACKEND

  def as_posix(self) -> str:
    """The local folder: what orbax gives TensorStore (see the docstring)."""
    return _local(self._path_str)


@pytest.fixture
def bucket(tmp_path, monkeypatch):
  """The bucket's local folder; the test runs in an empty current directory."""
  root = tmp_path / 'bucket'
  root.mkdir()
  cwd = tmp_path / 'cwd'
  cwd.mkdir()
  monkeypatch.setitem(_BUCKET, 'root', str(root))
  monkeypatch.chdir(cwd)
  yield root
  assert not os.listdir(cwd), (
      'code wrote under the current directory, taking the URL for a local '
      f'path: {sorted(os.listdir(cwd))}'
  )


def test_fake_scheme_is_a_bucket(bucket):
  path = epath.Path(f'{PREFIX}b/run') / 'a' / 'x.txt'
  assert (
      isinstance(path, FakeBucketPath) and str(path) == f'{PREFIX}b/run/a/x.txt'
  )
  path.parent.mkdir(parents=True)
  path.write_text('hi')
  assert (bucket / 'b' / 'run' / 'a' / 'x.txt').read_text() == 'hi'
  assert [p.name for p in path.parent.parent.iterdir()] == ['a']
  os.makedirs(os.path.dirname(str(path)))  # what string code does with it
  assert os.listdir('.') == [f'{SCHEME}:']
  os.removedirs(f'{SCHEME}:/b/run/a')


def test_evaluate_and_track_with_a_url_workdir(smoke_model, bucket, tmp_path):
  config, _, _, variables = smoke_model
  data = str(tmp_path / 'data')  # input frames stay local
  synthetic.generate(data, num_videos=2, frames=5, size=(96, 72), seed=3)
  config = config.copy_and_resolve_references()
  config.data.eval_root = data
  config.track.batch_sequences = 2
  workdir = f'{PREFIX}b/run'
  run = bucket / 'b' / 'run'
  save_checkpoint(str(run), config, variables)  # as training writes it there

  # main.py --mode=evaluate
  config = run_config.with_checkpoint_config(config, workdir, set())
  metrics = evaluate.evaluate(config, workdir)
  assert set(metrics['trackers']) == {'cost', 'ncc', 'static'}
  out = run / 'eval' / f'{config.data.eval_dataset}-{config.data.eval_split}'
  for name in ('table.txt', 'metrics.json', 'speed.json', 'success.png'):
    assert (out / name).is_file(), name
  assert (out / 'table.txt').read_text() == metrics['table'] + '\n'
  sequences = load_dataset(
      config.data.eval_dataset, data, config.data.eval_split
  )
  for tracker in ('cost', 'ncc', 'static'):
    for seq in sequences:
      boxes = results_io.read_boxes(
          out / 'results' / tracker / f'{seq.name}.txt', len(seq)
      )
      np.testing.assert_array_equal(boxes[0], seq.init_box)
  assert (out / 'results' / 'cost' / 'tracker.json').is_file()
  for path in metrics['outputs'].values():
    assert str(path).startswith(f'{workdir}/eval/'), path
    assert epath.Path(path).exists(), path
  # A second run finds the results in the bucket: nothing to track.
  again = evaluate.evaluate(config, workdir)
  assert again['speed']['tracked'] == [] and len(again['speed']['skipped']) == 2
  # Named checkpoints (cost_jax.evaluate_many): summary.md beside the tables.
  config.track.steps = '7'
  many = evaluate.evaluate(config, workdir)
  assert many['summary']['best'] == 'cost-step7'
  assert (run / 'eval' / 'summary.md').is_file()
  assert (out / 'results' / 'cost-step7' / f'{sequences[0].name}.txt').is_file()
  speed = json.loads((out / 'speed.json').read_text())
  assert set(speed) == {'cost', 'cost-step7'}
  config.track.steps = 'latest'

  # main.py --mode=track (output folder WORKDIR/track/<video name>)
  sequence = sequences[0]
  tracker = Tracker.from_workdir(config, workdir)
  jax.tree.map(
      np.testing.assert_array_equal,
      tracker.engine.variables['params'],
      variables['params'],
  )
  summary = video.track_video(
      config,
      workdir,
      os.path.dirname(sequence.frames[0]),
      sequence.init_box,
      sequence.language,
  )
  folder = os.path.basename(os.path.dirname(sequence.frames[0]))
  track = run / 'track' / folder
  assert summary['boxes'] == f'{workdir}/track/{folder}/boxes.txt'
  boxes = results_io.read_boxes(track / 'boxes.txt', len(sequence))
  np.testing.assert_allclose(boxes[0], sequence.init_box, atol=1e-3)
  assert len((track / 'scores.txt').read_text().splitlines()) == len(sequence)
  assert (track / 'tracked.mp4').stat().st_size > 0
  assert sorted(p.name for p in track.iterdir()) == [
      'boxes.txt',
      'scores.txt',
      'tracked.mp4',
  ]
