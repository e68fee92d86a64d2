"""TFDS builders `synthetic_vlsot_cost` / `vlsot500_cost`, and the pair pipeline reading them."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import cost
from input_pipeline import pairs, synthetic
from input_pipeline.readers import load_dataset
from input_pipeline.tfds_builders import reader


@pytest.fixture(scope='module')
def dirs(tmp_path_factory):
  """A 3-video synthetic set (VL-SOT500 layout, with absent frames) and a TFDS data dir."""
  base = tmp_path_factory.mktemp('tfds')
  manual = str(base / 'manual')
  synthetic.generate(
      manual,
      'vlsot500',
      3,
      0,
      frames=20,
      size=(160, 120),
      high_speed_fraction=0.34,
      out_of_view_prob=1.0,
  )
  return manual, str(base / 'data')


def _load(name, split, dirs):
  manual, data_dir = dirs
  return tfds.load(
      name,
      split=split,
      data_dir=data_dir,
      download_and_prepare_kwargs={
          'download_config': tfds.download.DownloadConfig(manual_dir=manual)
      },
  )


def test_synthetic_builder_round_trips_the_reader(dirs):
  ds = _load('synthetic_vlsot_cost', 'train', dirs)
  examples = {ex['name'].decode(): ex for ex in tfds.as_numpy(ds)}
  sequences = {s.name: s for s in load_dataset('synthetic', dirs[0])}
  assert set(examples) == set(sequences)
  for name, seq in sequences.items():
    ex = examples[name]
    assert ex['language'].decode() == seq.language
    np.testing.assert_array_equal(ex['boxes'], seq.boxes)
    np.testing.assert_array_equal(ex['visible'], seq.visible)
    assert (
        ex['frames'].shape == (len(seq), 120, 160, 3)
        and ex['frames'].dtype == np.uint8
    )
  assert any(
      not ex['visible'].all() and ex['absent'].any() for ex in examples.values()
  )


def test_vlsot500_builder_keeps_subsets(dirs):
  ds = _load('vlsot500_cost', 'test', dirs)
  subsets = sorted(ex['subset'].decode() for ex in tfds.as_numpy(ds))
  assert subsets == ['VL-SOT230', 'VL-SOT230', 'VL-SOT270']


def test_pipeline_reads_tfds_like_raw(dirs):
  manual, data_dir = dirs
  config = cost.get_config('smoke')
  config.data.roots.synthetic = manual
  raw = next(pairs.make_train_iterator(config, start_step=1))
  config.data.source = 'tfds'
  config.data.tfds_data_dir = data_dir
  from_tfds = next(pairs.make_train_iterator(config, start_step=1))
  for key in pairs.KEYS:  # same sequences, same bytes, same seeds -> same batch
    np.testing.assert_array_equal(raw[key], from_tfds[key])
  config.data.roots.synthetic = (
      ''  # prepared: the manual dir is no longer needed
  )
  assert next(pairs.make_train_iterator(config))['search'].shape[0] == 4
  sequences, _ = reader.load_sequences('synthetic', data_dir, None, 1, 2)
  assert 1 <= len(sequences) <= 2


def test_unsupported_tfds_dataset_is_a_clear_error(dirs):
  config = cost.get_config('smoke')
  config.data.update(
      source='tfds', train_datasets='lasot', tfds_data_dir=dirs[1]
  )
  config.data.roots.lasot = dirs[0]
  with pytest.raises(ValueError, match='no TFDS builder.*source=raw'):
    pairs.make_train_iterator(config)
