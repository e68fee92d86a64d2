"""TFDS builders for the VL-SOT500 layout: `vlsot500_cost` and `synthetic_vlsot_cost`.

Both read a folder in the VL-SOT500 layout (`input_pipeline/readers/vlsot.py`)
given as the manual dir, and write one example per video:

    name            text    the video folder name
    subset          text    VL-SOT230 / VL-SOT270 (or the folder read)
    language        text    the description (first line of language.txt)
    frames          sequence of JPEG images (the files' bytes, not re-encoded)
    boxes           float64 (N, 4)  x, y, w, h pixels; NaN where absent or invalid
    raw_boxes       float64 (N, 4)  the values stored in groundtruth_rect.txt
    visible         bool (N,)       the target is visible with a valid box
    absent          bool (N,)       the files mark the target absent
    attributes      float32 (A,)    attributes.txt as stored (empty if missing)
    relative_speed  float32         relative_speed.txt (NaN if missing)

Usage::

    import input_pipeline.tfds_builders  # registers the builders
    ds = tfds.load('synthetic_vlsot_cost', split='train', data_dir=DATA_DIR,
                   download_and_prepare_kwargs={'download_config':
                       tfds.download.DownloadConfig(manual_dir=SYNTHETIC_DIR)})

The names end in `_cost` so they cannot clash with datasets TFDS ships.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from input_pipeline.readers import vlsot
from input_pipeline.readers.frames import subdirs
from input_pipeline.sampler import absent_mask
from input_pipeline.sequence import Sequence

__all__ = ['Vlsot500Cost', 'SyntheticVlsotCost', 'features', 'to_example']

_SPLIT_FOLDERS = ('train', 'val', 'validation', 'test')
_BYTES = (
    tfds.features.Encoding.BYTES
)  # float64 as bytes (tf.train.Example floats are 32-bit)


def features() -> tfds.features.FeaturesDict:
  """The per-video features shared by both builders."""
  return tfds.features.FeaturesDict(
      {
          'name': tfds.features.Text(),
          'subset': tfds.features.Text(),
          'language': tfds.features.Text(),
          'frames': tfds.features.Sequence(
              tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg')
          ),
          'boxes': tfds.features.Tensor(
              shape=(None, 4), dtype=np.float64, encoding=_BYTES
          ),
          'raw_boxes': tfds.features.Tensor(
              shape=(None, 4), dtype=np.float64, encoding=_BYTES
          ),
          'visible': tfds.features.Tensor(shape=(None,), dtype=np.bool_),
          'absent': tfds.features.Tensor(shape=(None,), dtype=np.bool_),
          'attributes': tfds.features.Tensor(shape=(None,), dtype=np.float32),
          'relative_speed': tfds.features.Scalar(dtype=np.float32),
      }
  )


def to_example(seq: Sequence) -> dict:
  """One reader `Sequence` as a TFDS example (frames as paths: their bytes are stored)."""
  missing = [f for f in seq.frames if not os.path.isfile(f)]
  if missing:
    raise FileNotFoundError(
        f'{seq.name}: {len(missing)} frame file(s) missing, '
        f'e.g. {missing[0]}'
    )
  raw = seq.extra.get('raw_boxes', seq.boxes)
  return {
      'name': seq.name,
      'subset': str(seq.extra.get('subset', '')),
      'language': seq.language,
      'frames': list(seq.frames),
      'boxes': np.asarray(seq.boxes, np.float64).reshape(-1, 4),
      'raw_boxes': np.asarray(raw, np.float64).reshape(-1, 4),
      'visible': np.asarray(seq.visible, np.bool_),
      'absent': absent_mask(seq),
      'attributes': np.asarray(
          seq.extra.get('attribute_values', []), np.float32
      ).reshape(-1),
      'relative_speed': np.float32(seq.extra.get('relative_speed', np.nan)),
  }


def _examples(folder: str, dataset: str):
  for seq in vlsot.load(folder, dataset=dataset):
    key = f'{seq.extra.get("subset", "")}/{seq.name}'
    yield key, to_example(seq)


class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base: `code_path` from the class's file.

  TFDS 4.9's own `code_path` imports the `importlib_resources` backport, which
  it only installs for Python < 3.9, for any builder defined in a package.
  """

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(inspect.getfile(cls))


class Vlsot500Cost(_Builder):
  """VL-SOT500 (VL-SOT230 + VL-SOT270), one example per video; split 'test'."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download VL-SOT500 (https://github.com/983632847/Awesome-Multimodal-Object-Tracking)
  and give the folder that holds VL-SOT230/ and VL-SOT270/ as the manual dir
  (`tfds.download.DownloadConfig(manual_dir=...)`; training with
  `--config.data.source=tfds` prepares it from `config.data.roots.vlsot500`).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features(),
        homepage='https://github.com/983632847/Awesome-Multimodal-Object-Tracking',
        description='VL-SOT500 small-object vision-language tracking benchmark (test only).',
    )

  def _split_generators(self, dl_manager):
    return {
        'test': self._generate_examples(
            os.fspath(dl_manager.manual_dir), 'vlsot500'
        )
    }

  def _generate_examples(self, folder, dataset):
    return _examples(folder, dataset)


class SyntheticVlsotCost(_Builder):
  """The synthetic VL small-object set (`python -m input_pipeline.synthetic`).

  The manual dir is one generated folder (split 'train'), or holds generated
  folders named train/, val/, test/ (one split each).
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Generate the set, e.g.
    python -m input_pipeline.synthetic --out DIR/train --layout vlsot500 --num_videos 40
    python -m input_pipeline.synthetic --out DIR/test --layout vlsot500 --num_videos 12 --seed 1
  and give DIR (or a single generated folder) as the manual dir.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features(),
        description='Synthetic small-object vision-language videos in the VL-SOT500 layout.',
    )

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    folders = {
        d.lower(): os.path.join(root, d)
        for d in subdirs(root)
        if d.lower() in _SPLIT_FOLDERS
    }
    if not folders:
      return {'train': self._generate_examples(root, 'synthetic')}
    return {
        name: self._generate_examples(folder, 'synthetic')
        for name, folder in folders.items()
    }

  def _generate_examples(self, folder, dataset):
    return _examples(folder, dataset)
