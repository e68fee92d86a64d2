"""The `--mode=train` driver: synthetic data when configured, train, evaluate.

With the `demo` (or `smoke`) variant and no dataset roots, this generates the
synthetic VL small-object train and test sets under WORKDIR/data (once; reused
when present), trains, evaluates the held-out test videos (with a static
baseline), renders one annotated video and prints where everything is.
"""

import os
import time

from cost_jax import data_roots
from cost_jax import evaluate
from cost_jax import train
from cost_jax.tracking import video
from input_pipeline.readers import load_dataset


def train_and_evaluate(config, workdir):
  """Trains; for synthetic-data runs, then evaluates and renders a video."""
  start = time.time()
  config = data_roots.prepare(config, workdir)
  train.train(config, workdir)
  if not data_roots.uses_synthetic(config):
    return
  report = evaluate.evaluate(config, workdir)
  outputs = dict((report or {}).get('outputs', {}))
  outputs['video'] = render_example(config, workdir)
  outputs['loss_curve'] = os.path.join(workdir, 'loss_curve.png')
  print(f'\nDone in {time.time() - start:.0f}s. Outputs in {workdir}:')
  for name, path in sorted(outputs.items()):
    print(f'  {name:<20} {path}')


def render_example(config, workdir):
  """Tracks the first held-out test video with its description -> mp4 path."""
  name, root = config.data.eval_dataset, config.data.eval_root
  sequence = load_dataset(name, root, config.data.eval_split)[0]
  frame_dir = os.path.dirname(sequence.frames[0])
  out_dir = os.path.join(workdir, 'video', sequence.name)
  summary = video.track_video(
      config, workdir, frame_dir, sequence.boxes[0], sequence.language, out_dir
  )
  return summary['video']
