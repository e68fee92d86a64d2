"""`--mode=evaluate`: track the evaluation set, score it, plot it.

    python main.py --config=configs/cost.py:demo --workdir=runs/demo --mode=evaluate

Weights: the latest checkpoint in ``WORKDIR/checkpoints``, else converted
weights named by the config (``config.track.weights``, else
``config.train.init_transt``).  Data: ``config.data.eval_dataset`` /
``eval_split`` from ``config.data.roots.<name>``; the synthetic set defaults
to ``WORKDIR/data/synthetic_test`` and is generated there if missing.
Output under ``WORKDIR/eval/<dataset>-<split>/``: raw results
``results/<tracker>/<seq>.txt`` (+ ``_time.txt``) for the model
(``config.track.tracker_name``) and a ``static`` baseline (the initial box
held on every frame) and an ``ncc`` classical baseline (first-frame
template matching, cost_jax.tracking.ncc), then ``metrics.json``, the table (``table.txt``), PNG
plots and ``speed.json``.  Re-running tracks only the missing sequences.
WORKDIR may be a URL (``gs://bucket/run``, etils.epath): the checkpoints are
read and the outputs written there.
Several datasets (``eval_dataset=a,b``) or checkpoints (``config.track.steps``
= ``all`` or ``N,M``) are evaluated by `cost_jax.evaluate_many`.

Unreadable frames (``config.track.on_bad_frame`` / ``max_bad_frames``, see
`cost_jax.tracking.bad_frames`): the last box is carried over them and they
are listed in ``results/<tracker>/<seq>_bad_frames.txt``; a sequence that
stops there (or whose first frame is unreadable) has no results, the others
keep theirs, and the evaluation ends with an error naming it.
"""

from __future__ import annotations

import json
import os

from cost_jax import evaluate_many
from cost_jax import evaluate_steps
from cost_jax import weights
from cost_jax.evaluation import results_io
from cost_jax.tracking import bad_frames
from cost_jax.tracking.engine import Engine

__all__ = ['evaluate']


def evaluate(config, workdir) -> dict:
  """Tracks, scores and plots; returns the metrics dict (as metrics.json) + 'speed', 'outputs'.

  Several datasets (``config.data.eval_dataset=a,b``) or checkpoints
  (``config.track.steps``) go to `cost_jax.evaluate_many`.
  """

  if evaluate_many.is_many(config):
    return evaluate_many.evaluate_many(config, workdir)
  bad_frames.check_policy(config)
  name, root = evaluate_steps.dataset_root(config, workdir)
  split = config.data.eval_split
  sequences = evaluate_steps.load_sequences(name, root, split)
  out = evaluate_steps.out_dir(workdir, name, split)
  results_dir = os.path.join(out, 'results')
  variables, weights_info = weights.load_weights(config, workdir)
  tracker_name = config.track.tracker_name
  report = evaluate_steps.track_model(
      config,
      Engine(config, variables),
      sequences,
      results_dir,
      tracker_name,
      weights_info,
  )
  metrics = evaluate_steps.score(
      config, name, split, sequences, results_dir, [tracker_name], out
  )
  results_io.atomic_write_text(
      os.path.join(out, 'speed.json'),
      json.dumps(report, indent=1, default=float) + '\n',
  )
  print(metrics['table'])
  bad = evaluate_steps.bad_frames_line(
      os.path.join(results_dir, tracker_name), sequences
  )
  print(
      f'speed: {evaluate_steps.speed_line(report)}\n{bad}wrote {out}/metrics.json, table.txt, speed.json '
      f'and {len(metrics["plots"])} plots'
  )
  metrics['speed'] = report
  metrics['outputs'] = {
      'results': results_dir,
      'metrics': os.path.join(out, 'metrics.json'),
      'table': os.path.join(out, 'table.txt'),
      'speed': os.path.join(out, 'speed.json'),
      **{f'plot_{k}': v for k, v in metrics['plots'].items()},
  }
  return metrics
