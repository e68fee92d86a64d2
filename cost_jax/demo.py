"""The `--mode=train` driver: synthetic data when configured, train, evaluate.

With the `demo` (or `smoke`) variant and no dataset roots, this generates the
synthetic VL small-object train and test sets under WORKDIR/data (once; reused
when present), trains, evaluates the held-out test videos (with a static
baseline), renders one annotated video and prints where everything is.
"""

import os
import time

from absl import logging

SYNTHETIC = 'synthetic'


def synthetic_roots(config, workdir):
  """(train_root, test_root) of the synthetic sets, generated if needed."""
  from input_pipeline import synthetic
  s = config.data.synthetic
  train_root = config.data.roots.synthetic or os.path.join(
      workdir, 'data', 'synthetic_train')
  test_root = config.data.eval_root or os.path.join(
      workdir, 'data', 'synthetic_test')
  plans = ((train_root, s.num_train_videos, s.seed, s.distractors),
           (test_root, s.num_test_videos, s.seed + 1000, s.test_distractors))
  for root, count, seed, distractors in plans:
    if count <= 0:
      continue
    start = time.time()
    names = synthetic.generate(root, 'vlsot500', count, seed, frames=s.frames,
                               distractors=distractors)
    logging.info('Synthetic set %s: %d videos (%.1fs).', root, len(names),
                 time.time() - start)
  return train_root, test_root


def uses_synthetic(config):
  return (SYNTHETIC in config.data.train_datasets.split(',') or
          config.data.eval_dataset == SYNTHETIC)


def resolve_data(config, workdir):
  """Fills the synthetic roots into the (locked) config in place."""
  if not uses_synthetic(config):
    return
  train_root, test_root = synthetic_roots(config, workdir)
  config.data.roots.synthetic = train_root
  if config.data.eval_dataset == SYNTHETIC:
    config.data.eval_root = test_root


def train_then_evaluate(config, workdir):
  """Trains; for synthetic-data runs, then evaluates and renders a video."""
  from cost_jax import train
  start = time.time()
  resolve_data(config, workdir)
  train.train(config, workdir)
  if not uses_synthetic(config):
    return
  from cost_jax import evaluate
  report = evaluate.evaluate(config, workdir)
  print(f'\nDone in {time.time() - start:.0f}s. Outputs in {workdir}:')
  for name, path in sorted((report or {}).get('outputs', {}).items()):
    print(f'  {name:<18} {path}')
