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


def synthetic_root(config, workdir, split):
  """The synthetic 'train', held-out 'test' or 'val' set, generated once.

  Roots: config.data.roots.synthetic (train) / eval_root (test) / val_root
  (val), else WORKDIR/data/synthetic_{train,test,val}. Test videos use
  seed + 1000, validation videos seed + 2000; both use
  config.data.synthetic.test_distractors and test_grey_frames.
  """
  from input_pipeline import synthetic
  s = config.data.synthetic
  if split == 'train':
    root, count, seed, distractors, grey = (
        config.data.roots.synthetic, s.num_train_videos, s.seed, s.distractors,
        s.get('grey_frames', 0))
  else:
    root, count, offset = {
        'test': (config.data.eval_root, s.num_test_videos, 1000),
        'val': (config.data.get('val_root', ''), s.get('num_val_videos', 0),
                2000)}[split]
    seed, distractors, grey = (s.seed + offset, s.test_distractors,
                               s.get('test_grey_frames', 0))
  root = root or os.path.join(workdir, 'data', f'synthetic_{split}')
  start = time.time()
  names = synthetic.generate(root, 'vlsot500', max(int(count), 1), int(seed),
                             frames=int(s.frames), distractors=distractors,
                             grey_frames=int(grey),
                             grey_fraction=float(s.get('grey_fraction', 1.0))
                             if split == 'train' else 1.0)
  logging.info('Synthetic %s set %s: %d videos (%.1fs).', split, root,
               len(names), time.time() - start)
  return root


def uses_synthetic(config):
  return (SYNTHETIC in config.data.train_datasets.split(',') or
          config.data.eval_dataset == SYNTHETIC)


def resolve_data(config, workdir):
  """Fills the synthetic roots into the (locked) config in place."""
  if not uses_synthetic(config):
    return
  if SYNTHETIC in config.data.train_datasets.split(','):
    config.data.roots.synthetic = synthetic_root(config, workdir, 'train')
  if config.data.eval_dataset == SYNTHETIC:
    config.data.eval_root = synthetic_root(config, workdir, 'test')
    if (config.data.synthetic.get('num_val_videos', 0) > 0 and
        config.train.get('val_every', 0) > 0):
      config.data.val_root = synthetic_root(config, workdir, 'val')


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
  outputs = dict((report or {}).get('outputs', {}))
  outputs['video'] = render_example(config, workdir)
  outputs['loss_curve'] = os.path.join(workdir, 'loss_curve.png')
  print(f'\nDone in {time.time() - start:.0f}s. Outputs in {workdir}:')
  for name, path in sorted(outputs.items()):
    print(f'  {name:<20} {path}')


def render_example(config, workdir):
  """Tracks the first held-out test video with its description -> mp4 path."""
  from input_pipeline.readers import load_dataset
  from cost_jax.tracking import video
  name, root = config.data.eval_dataset, config.data.eval_root
  sequence = load_dataset(name, root, config.data.eval_split)[0]
  frame_dir = os.path.dirname(sequence.frames[0])
  out_dir = os.path.join(workdir, 'video', sequence.name)
  summary = video.track_video(config, workdir, frame_dir, sequence.boxes[0],
                              sequence.language, out_dir)
  return summary['video']
