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

Unreadable frames (``config.track.on_bad_frame`` / ``max_bad_frames``, see
`cost_jax.tracking.bad_frames`): the last box is carried over them and they
are listed in ``results/<tracker>/<seq>_bad_frames.txt``; a sequence that
stops there (or whose first frame is unreadable) has no results, the others
keep theirs, and the evaluation ends with an error naming it.
"""

from __future__ import annotations

import json
import logging
import os

import cv2
import numpy as np

from cost_jax import data_roots
from cost_jax.evaluation import results_io

__all__ = ['evaluate', 'dataset_root', 'synthetic_test_root', 'fingerprint', 'write_static',
           'write_ncc', 'STATIC_NAME', 'NCC_NAME']

STATIC_NAME = 'static'
NCC_NAME = 'ncc'  # cost_jax.tracking.ncc.NAME


def synthetic_test_root(config, workdir) -> str:
  """The held-out synthetic test set, generated once (cost_jax.data_roots)."""
  return data_roots.synthetic_set(config, workdir, 'test')


def dataset_root(config, workdir) -> tuple[str, str]:
  """(dataset name, root folder) of the evaluation set.

  ``config.data.eval_root``, else ``WORKDIR/data/synthetic_test`` for the synthetic set
  (``roots.synthetic`` is its training set), else ``config.data.roots.<name>``.
  """
  name = config.data.eval_dataset
  root = config.data.get('eval_root', '')
  if not root:
    root = (synthetic_test_root(config, workdir) if name == 'synthetic'
            else config.data.roots.get(name, ''))
  if not root:
    raise FileNotFoundError(f'no root for evaluation dataset {name!r}: set '
                            f'--config.data.roots.{name}=/path/to/{name}')
  return name, root


def fingerprint(config, weights_info: str) -> dict:
  """What determines the raw results (stored in the results folder's manifest)."""
  return {'variant': config.variant, 'model': config.model.to_dict(),
          'text': config.text.to_dict(),
          'track': _track_fingerprint(config.track),
          'crops': {k: config.data[k] for k in ('template_factor', 'search_factor')},
          'weights': weights_info}


def _track_fingerprint(track) -> dict:
  """The tracker settings that change boxes (size_lr only when not TransT's 1,
  so results folders made before it existed stay valid)."""
  out = {k: track[k] for k in ('window_influence', 'min_size')}
  if track.get('size_lr', 1.0) != 1.0:
    out['size_lr'] = track.size_lr
  return out


def write_static(sequences, results_dir) -> list:
  """The ``static`` baseline: the initial box on every frame.  Returns the new sequences."""
  from cost_jax.tracking import runner
  folder = runner.check_manifest(results_dir, STATIC_NAME, {'tracker': 'static initial box'})
  todo = runner.pending_sequences(folder, sequences)
  for seq in todo:
    results_io.write_boxes(os.path.join(folder, f'{seq.name}.txt'),
                           np.repeat(seq.init_box[None], len(seq), axis=0))
  return [s.name for s in todo]


def write_ncc(sequences, results_dir) -> list:
  """The ``ncc`` classical baseline (cost_jax.tracking.ncc): a template
  matcher that learns nothing.  Returns the newly tracked sequences."""
  from cost_jax.tracking import ncc, runner

  def read(path):
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

  folder = runner.check_manifest(results_dir, ncc.NAME, {'tracker': ncc.DESCRIPTION})
  todo = runner.pending_sequences(folder, sequences)
  for seq in todo:
    boxes, times = ncc.track_paths(seq.frames, seq.init_box, read)
    results_io.write_sequence_results(results_dir, ncc.NAME, seq.name, boxes, times)
  return [s.name for s in todo]


def _out_dir(config, workdir) -> str:
  tag = f'{config.data.eval_dataset}-{config.data.eval_split}'
  return os.path.join(os.fspath(workdir), 'eval', tag)


def evaluate(config, workdir) -> dict:
  """Tracks, scores and plots; returns the metrics dict (as metrics.json) + 'speed', 'outputs'."""
  from cost_jax import analyze
  from cost_jax.tracking import bad_frames, runner
  from cost_jax.tracking.engine import Engine
  from cost_jax.tracking.tracker import load_weights
  from input_pipeline.readers import load_dataset

  on_bad_frame, max_bad_frames = bad_frames.check_policy(config)
  name, root = dataset_root(config, workdir)
  sequences = load_dataset(name, root, config.data.eval_split)
  if not sequences:
    raise ValueError(f'dataset {name!r} at {root} (split {config.data.eval_split!r}) has no '
                     'sequences')
  out_dir = _out_dir(config, workdir)
  results_dir = os.path.join(out_dir, 'results')
  variables, weights_info = load_weights(config, workdir)
  engine = Engine(config, variables)
  tracker_name = config.track.tracker_name
  report = runner.run_sequences(engine, sequences, results_dir, tracker_name,
                                batch_size=int(config.track.batch_sequences),
                                fingerprint=fingerprint(config, weights_info),
                                on_bad_frame=on_bad_frame, max_bad_frames=max_bad_frames)
  _check_failed(report, os.path.join(results_dir, tracker_name), len(sequences))
  logging.info('%s: tracked %d sequences (%d already done), %s frames/s after the first frame; '
               'compile %.1f s', tracker_name, len(report['tracked']), len(report['skipped']),
               'n/a' if report['fps'] is None else f'{report["fps"]:.1f}',
               report['compile_s'])
  write_static(sequences, results_dir)
  write_ncc(sequences, results_dir)
  boxes, times = {}, {}
  for tracker in (tracker_name, NCC_NAME, STATIC_NAME):
    boxes[tracker], times[tracker] = results_io.load_tracker_results(
        os.path.join(results_dir, tracker), sequences)
  protocol = config.track.protocol or analyze.DEFAULT_PROTOCOL.get(name, 'pytracking')
  metrics = analyze.analyze(sequences, boxes, protocol, out_dir,
                            times_by_tracker={t: times[t] for t in (tracker_name, NCC_NAME)},
                            timing_by_tracker={
                                t: results_io.read_timing(os.path.join(results_dir, t))
                                for t in (tracker_name, NCC_NAME)},
                            title=f'{name} ({config.data.eval_split})')
  results_io.atomic_write_text(os.path.join(out_dir, 'table.txt'), metrics['table'] + '\n')
  results_io.atomic_write_text(os.path.join(out_dir, 'speed.json'),
                               json.dumps(report, indent=1, default=float) + '\n')
  print(metrics['table'])
  bad = _bad_frames_line(os.path.join(results_dir, tracker_name), sequences)
  print(f'speed: {_speed_line(report)}\n{bad}wrote {out_dir}/metrics.json, table.txt, speed.json '
        f'and {len(metrics["plots"])} plots')
  metrics['speed'] = report
  metrics['outputs'] = {'results': results_dir,
                        'metrics': os.path.join(out_dir, 'metrics.json'),
                        'table': os.path.join(out_dir, 'table.txt'),
                        'speed': os.path.join(out_dir, 'speed.json'),
                        **{f'plot_{k}': v for k, v in metrics['plots'].items()}}
  return metrics


def _check_failed(report: dict, folder: str, total: int) -> None:
  """Raises BadFramesError naming the sequences that stopped at unreadable frames."""
  from cost_jax.tracking.bad_frames import BadFramesError
  failed = report['failed']
  if failed:
    raise BadFramesError(
        f'{len(failed)} of {total} sequences stopped at unreadable frames and have no '
        f'results ({"; ".join(failed.values())}); the results of the others are kept in '
        f'{folder}. Fix: replace those frames (or pass --config.track.on_bad_frame=skip) '
        'and run the same command again: only the missing sequences are tracked.')


def _bad_frames_line(folder: str, sequences) -> str:
  """'N unreadable frames in M sequences ...\n' from the results folder, or ''."""
  from cost_jax.tracking.runner import BAD_FRAMES_SUFFIX
  counts = {}
  for seq in sequences:
    path = os.path.join(folder, f'{seq.name}{BAD_FRAMES_SUFFIX}')
    if os.path.isfile(path):
      with open(path, encoding='utf-8') as f:
        counts[seq.name] = sum(1 for line in f if line.strip())
  if not counts:
    return ''
  names = ', '.join(f'{n} ({c})' for n, c in sorted(counts.items()))
  return (f'unreadable frames (last box carried over): {sum(counts.values())} in '
          f'{len(counts)} sequences: {names}; listed in {folder}/*{BAD_FRAMES_SUFFIX}\n')


def _speed_line(report: dict) -> str:
  if not report['tracked']:
    return 'all sequences were already tracked (delete results to re-time)'
  return (f'{report["fps"]:.1f} frames/s over {len(report["tracked"])} sequences (batch '
          f'{report["batch_size"]}, first frames excluded), init {report["init_s"] * 1e3:.1f} '
          f'ms/sequence, compile {report["compile_s"]:.1f} s')
