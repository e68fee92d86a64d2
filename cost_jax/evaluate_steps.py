"""The steps of one evaluation (`cost_jax.evaluate`): where the set is, what
determines the results (their fingerprint), tracking the model and the
static and NCC baselines, scoring and plotting, and the summary lines.
`cost_jax.evaluate_many` runs them over several datasets and checkpoints.
"""

from __future__ import annotations

import logging
import os

from etils import epath
import numpy as np

from cost_jax import data_roots
from cost_jax.evaluation import report
from cost_jax.evaluation import results_io
from cost_jax.tracking import bad_frames
from cost_jax.tracking import ncc
from cost_jax.tracking import runner
from input_pipeline.readers import load_dataset

__all__ = [
    'dataset_root',
    'synthetic_test_root',
    'fingerprint',
    'write_static',
    'write_ncc',
    'STATIC_NAME',
    'NCC_NAME',
    'out_dir',
    'load_sequences',
    'track_model',
    'score',
    'bad_frames_line',
    'speed_line',
]

STATIC_NAME = 'static'
NCC_NAME = 'ncc'  # cost_jax.tracking.ncc.NAME


def synthetic_test_root(config, workdir) -> str:
  """The held-out synthetic test set, generated once (cost_jax.data_roots)."""
  return data_roots.synthetic_set(config, workdir, 'test')


def dataset_root(config, workdir, name=None) -> tuple[str, str]:
  """(dataset name, root folder) of the evaluation set ``name`` (default: the config's).

  ``config.data.eval_root``, else ``WORKDIR/data/synthetic_test`` for the synthetic set
  (``roots.synthetic`` is its training set), else ``config.data.roots.<name>``.
  """
  name = name or config.data.eval_dataset
  root = config.data.get('eval_root', '')
  if not root:
    root = (
        synthetic_test_root(config, workdir)
        if name == 'synthetic'
        else config.data.roots.get(name, '')
    )
  if not root:
    raise FileNotFoundError(
        f'no root for evaluation dataset {name!r}: set '
        f'--config.data.roots.{name}=/path/to/{name}'
    )
  return name, root


def fingerprint(config, weights_info: str) -> dict:
  """What determines the raw results (stored in the results folder's manifest)."""
  return {
      'variant': config.variant,
      'model': config.model.to_dict(),
      'text': config.text.to_dict(),
      'track': _track_fingerprint(config.track),
      'crops': {
          k: config.data[k] for k in ('template_factor', 'search_factor')
      },
      'weights': weights_info,
  }


def _track_fingerprint(track) -> dict:
  """The tracker settings that change boxes (size_lr only when not TransT's 1,
  so results folders made before it existed stay valid)."""
  out = {k: track[k] for k in ('window_influence', 'min_size')}
  if track.get('size_lr', 1.0) != 1.0:
    out['size_lr'] = track.size_lr
  if track.get('motion', 'none') != 'none':
    out['motion'] = track.motion
  if track.get('redetect_tiles', 1) > 1:
    out.update({k: track[k] for k in ('redetect_tiles', 'redetect_stride')})
  if out.get('motion') or out.get('redetect_tiles'):
    out['lost_score'] = track.lost_score
  return out


def write_static(sequences, results_dir) -> list:
  """The ``static`` baseline: the initial box on every frame.  Returns the new sequences."""

  folder = runner.check_manifest(
      results_dir, STATIC_NAME, {'tracker': 'static initial box'}
  )
  todo = runner.pending_sequences(folder, sequences)
  for seq in todo:
    results_io.write_boxes(
        os.path.join(folder, f'{seq.name}.txt'),
        np.repeat(seq.init_box[None], len(seq), axis=0),
    )
  return [s.name for s in todo]


def write_ncc(sequences, results_dir) -> list:
  """The ``ncc`` classical baseline (cost_jax.tracking.ncc): a template
  matcher that learns nothing.  Returns the newly tracked sequences."""

  folder = runner.check_manifest(
      results_dir, ncc.NAME, {'tracker': ncc.DESCRIPTION}
  )
  todo = runner.pending_sequences(folder, sequences)
  for seq in todo:
    boxes, times = ncc.track_paths(
        seq.frames, seq.init_box, bad_frames.read_or_none
    )
    results_io.write_sequence_results(
        results_dir, ncc.NAME, seq.name, boxes, times
    )
  return [s.name for s in todo]


def out_dir(workdir, name: str, split: str) -> str:
  """``WORKDIR/eval/<dataset>-<split>``: one dataset's results, tables and plots
  (a URL when WORKDIR is one: gs://...)."""
  return os.path.join(os.fspath(workdir), 'eval', f'{name}-{split}')


def load_sequences(name: str, root: str, split: str) -> list:
  """The sequences of one evaluation set (ValueError when it has none)."""

  sequences = load_dataset(name, root, split)
  if not sequences:
    raise ValueError(
        f'dataset {name!r} at {root} (split {split!r}) has no sequences'
    )
  return sequences


def track_model(
    config, engine, sequences, results_dir, tracker_name: str, weights_info: str
) -> dict:
  """Tracks the sequences without results with the batched runner; -> its speed report.

  Raises BadFramesError naming the sequences that stopped at unreadable frames.
  """

  on_bad_frame, max_bad_frames = bad_frames.check_policy(config)
  report = runner.run_sequences(
      engine,
      sequences,
      results_dir,
      tracker_name,
      batch_size=int(config.track.batch_sequences),
      fingerprint=fingerprint(config, weights_info),
      on_bad_frame=on_bad_frame,
      max_bad_frames=max_bad_frames,
  )
  _check_failed(report, os.path.join(results_dir, tracker_name), len(sequences))
  logging.info(
      '%s: tracked %d sequences (%d already done), %s frames/s after the first frame; '
      'compile %.1f s',
      tracker_name,
      len(report['tracked']),
      len(report['skipped']),
      'n/a' if report['fps'] is None else f'{report["fps"]:.1f}',
      report['compile_s'],
  )
  return report


def score(
    config, name: str, split: str, sequences, results_dir, trackers, out
) -> dict:
  """Writes the static and NCC baselines, then scores ``trackers`` and both baselines
  (``metrics.json``, ``table.txt``, plots in ``out``); -> the metrics dict."""

  write_static(sequences, results_dir)
  write_ncc(sequences, results_dir)
  timed = list(trackers) + [NCC_NAME]
  boxes, times = {}, {}
  for tracker in timed + [STATIC_NAME]:
    boxes[tracker], times[tracker] = results_io.load_tracker_results(
        os.path.join(results_dir, tracker), sequences
    )
  protocol = config.track.protocol or report.DEFAULT_PROTOCOL.get(
      name, 'pytracking'
  )
  metrics = report.analyze(
      sequences,
      boxes,
      protocol,
      out,
      times_by_tracker={t: times[t] for t in timed},
      timing_by_tracker={
          t: results_io.read_timing(os.path.join(results_dir, t)) for t in timed
      },
      title=f'{name} ({split})',
  )
  results_io.atomic_write_text(
      os.path.join(out, 'table.txt'), metrics['table'] + '\n'
  )
  return metrics


def _check_failed(report: dict, folder: str, total: int) -> None:
  """Raises BadFramesError naming the sequences that stopped at unreadable frames."""

  failed = report['failed']
  if failed:
    raise bad_frames.BadFramesError(
        f'{len(failed)} of {total} sequences stopped at unreadable frames and have no '
        f'results ({"; ".join(failed.values())}); the results of the others are kept in '
        f'{folder}. Fix: replace those frames (or pass --config.track.on_bad_frame=skip) '
        'and run the same command again: only the missing sequences are tracked.'
    )


def bad_frames_line(folder: str, sequences) -> str:
  """'N unreadable frames in M sequences ...\n' from the results folder, or ''."""

  counts = {}
  for seq in sequences:
    path = epath.Path(folder) / f'{seq.name}{runner.BAD_FRAMES_SUFFIX}'
    if path.is_file():
      lines = path.read_text().splitlines()
      counts[seq.name] = sum(1 for line in lines if line.strip())
  if not counts:
    return ''
  names = ', '.join(f'{n} ({c})' for n, c in sorted(counts.items()))
  return (
      f'unreadable frames (last box carried over): {sum(counts.values())} in '
      f'{len(counts)} sequences: {names}; listed in {folder}/*{runner.BAD_FRAMES_SUFFIX}\n'
  )


def speed_line(report: dict) -> str:
  """One line about a run's speed (or that nothing new was tracked)."""
  if not report['tracked']:
    return 'all sequences were already tracked (delete results to re-time)'
  return (
      f'{report["fps"]:.1f} frames/s over {len(report["tracked"])} sequences (batch '
      f'{report["batch_size"]}, first frames excluded), init {report["init_s"] * 1e3:.1f} '
      f'ms/sequence, compile {report["compile_s"]:.1f} s'
  )
