"""Where a run's synthetic data lie, and their generation.

The folders are resolved by pure functions that read the config and return
paths; nothing here changes a config. `prepare` generates the sets a run
uses (once: a finished set is reused) and returns a copy of the config that
names their folders, which training (`config.data.val_root`) and evaluation
(`config.data.eval_root`) then read.

Default folders: WORKDIR/data/synthetic_{train,test,val}, unless
config.data.roots.synthetic (train), eval_root (test) or val_root (val) name
one. Test videos use seed + 1000, validation videos seed + 2000; both use
config.data.synthetic.test_distractors and test_grey_frames.
"""

import copy
import os
import time

from absl import logging

from cost_jax import errors
from input_pipeline import synthetic

SYNTHETIC = 'synthetic'
SPLITS = ('train', 'test', 'val')
# The config.data field that names each split's folder.
_FIELDS = {
    'train': ('roots', 'synthetic'),
    'test': ('eval_root',),
    'val': ('val_root',),
}
_SEED_OFFSETS = {'train': 0, 'test': 1000, 'val': 2000}


def _trains_on_synthetic(config) -> bool:
  return SYNTHETIC in config.data.train_datasets.split(',')


def uses_synthetic(config) -> bool:
  """Whether the run trains or evaluates on the synthetic set."""
  return _trains_on_synthetic(config) or config.data.eval_dataset == SYNTHETIC


def synthetic_splits(config) -> tuple:
  """The synthetic splits a training run uses, among SPLITS."""
  splits = ['train'] if _trains_on_synthetic(config) else []
  if config.data.eval_dataset == SYNTHETIC:
    splits.append('test')
    if (
        config.data.synthetic.get('num_val_videos', 0) > 0
        and config.train.get('val_every', 0) > 0
    ):
      splits.append('val')
  return tuple(splits)


def _configured(config, split) -> str:
  node = config.data
  for name in _FIELDS[split]:
    node = node.get(name, '')
  return node


def synthetic_root(config, workdir, split) -> str:
  """The folder of a synthetic split: configured, else under WORKDIR/data."""
  return _configured(config, split) or os.path.join(
      os.fspath(workdir), 'data', f'synthetic_{split}'
  )


def synthetic_roots(config, workdir) -> dict:
  """{split: folder} of the synthetic splits the run uses."""
  return {
      split: synthetic_root(config, workdir, split)
      for split in synthetic_splits(config)
  }


def generation_options(config, split) -> dict:
  """Arguments of `input_pipeline.synthetic.generate` for a split."""
  s = config.data.synthetic
  if split == 'train':
    count, distractors = s.num_train_videos, s.distractors
    grey, fraction = s.get('grey_frames', 0), s.get('grey_fraction', 1.0)
  else:
    count = {'test': s.num_test_videos, 'val': s.get('num_val_videos', 0)}[
        split
    ]
    distractors, grey, fraction = (
        s.test_distractors,
        s.get('test_grey_frames', 0),
        1.0,
    )
  return dict(
      num_videos=max(int(count), 1),
      seed=int(s.seed + _SEED_OFFSETS[split]),
      frames=int(s.frames),
      distractors=distractors,
      grey_frames=int(grey),
      grey_fraction=float(fraction),
  )


def generate(config, split, root) -> str:
  """Writes synthetic split `split` into `root` unless it is there; -> root.

  A folder named in the config that holds a set made with other options is
  refused, never replaced (the user's data are not deleted); a default folder
  under WORKDIR/data is regenerated.
  """
  options = generation_options(config, split)
  start = time.time()
  try:
    names = synthetic.generate(
        root, 'vlsot500', replace=not _configured(config, split), **options
    )
  except synthetic.SetMismatchError as e:
    raise errors.InvalidValue(
        str(e),
        f'point the config at another folder, or give the options '
        f'that made it (config.data.synthetic.*), or delete {e.out_dir}',
    ) from None
  logging.info(
      'Synthetic %s set %s: %d videos (%.1fs).',
      split,
      root,
      len(names),
      time.time() - start,
  )
  return root


def synthetic_set(config, workdir, split) -> str:
  """The folder of a synthetic split, generated there once."""
  return generate(config, split, synthetic_root(config, workdir, split))


def with_roots(config, roots):
  """A copy of `config` whose data fields name `roots` ({split: folder})."""
  out = copy.deepcopy(config)
  for split, root in roots.items():
    *parents, leaf = _FIELDS[split]
    node = out.data
    for name in parents:
      node = node[name]
    node[leaf] = root
  return out


def prepare(config, workdir, roots=None):
  """Generates the synthetic sets of `roots` (default: those the run uses)
  once; returns a copy of `config` that names their folders."""
  roots = synthetic_roots(config, workdir) if roots is None else roots
  for split, root in roots.items():
    generate(config, split, root)
  return with_roots(config, roots)
