"""Synthetic data roots: resolved without changing the config, generated once."""

import os

from configs import cost
from cost_jax import data_roots


def locked(variant):
  config = cost.get_config(variant)
  config.lock()
  return config


def test_roots_default_to_the_workdir_and_leave_the_config_alone():
  config = locked('demo')  # validates every 75 steps on 6 videos
  roots = data_roots.synthetic_roots(config, '/w')
  assert roots == {
      split: f'/w/data/synthetic_{split}' for split in ('train', 'test', 'val')
  }
  assert config.data.eval_root == '' and config.data.val_root == ''
  assert config.data.roots.synthetic == ''


def test_configured_roots_win_and_unused_splits_are_left_out():
  config = locked('smoke')  # no validation
  config.data.eval_root = '/held_out'
  assert data_roots.synthetic_roots(config, '/w') == {
      'train': '/w/data/synthetic_train',
      'test': '/held_out',
  }
  config.data.eval_dataset = 'lasot'
  config.data.train_datasets = 'lasot,got10k'
  assert data_roots.synthetic_roots(config, '/w') == {}
  assert not data_roots.uses_synthetic(config)


def test_each_split_has_its_own_seed_and_distractors():
  config = locked('demo')
  options = {
      s: data_roots.generation_options(config, s) for s in data_roots.SPLITS
  }
  seed = config.data.synthetic.seed
  assert [options[s]['seed'] for s in data_roots.SPLITS] == [
      seed,
      seed + 1000,
      seed + 2000,
  ]
  assert (
      options['test']['distractors'] == config.data.synthetic.test_distractors
  )
  assert (
      options['train']['num_videos'] == config.data.synthetic.num_train_videos
  )


def test_prepare_generates_once_and_returns_a_copy(tmp_path):
  config = locked('smoke')
  config.data.synthetic.update(num_train_videos=1, num_test_videos=1, frames=3)
  prepared = data_roots.prepare(config, str(tmp_path))
  train, test = (
      str(tmp_path / 'data' / f'synthetic_{s}') for s in ('train', 'test')
  )
  assert prepared.data.roots.synthetic == train
  assert prepared.data.eval_root == test
  assert config.data.roots.synthetic == '' and config.data.eval_root == ''
  assert prepared.is_locked
  before = mtimes(tmp_path)
  data_roots.prepare(config, str(tmp_path))  # Reuses the finished sets.
  assert mtimes(tmp_path) == before
  config.data.synthetic.frames = 4  # Other arguments: that set is replaced.
  data_roots.prepare(config, str(tmp_path))
  assert mtimes(tmp_path) != before


def mtimes(folder):
  return {
      os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
      for d, _, files in os.walk(folder)
      for f in files
  }
