"""Benchmark-server submissions: check a tracker's raw results, then zip them.

What each server accepts (the zip's layout, at its root):

* GOT-10k test (got10k toolkit ``ExperimentGOT10k.report`` zips
  ``results/GOT-10k/<tracker>/``): one folder per sequence,
  ``<seq>/<seq>_001.txt`` (``x,y,w,h`` per frame, comma-separated; further
  runs ``_002``, ``_003``) and ``<seq>/<seq>_time.txt`` (seconds per frame,
  one comma-separated column per run).
* TrackingNet test: ``<seq>.txt`` per sequence, flat, ``x,y,w,h`` per frame,
  comma-separated.

Before anything is written every expected sequence must have results with
one finite box per frame (`PackError` lists what is wrong).  numpy only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cost_jax import errors
from cost_jax.evaluation import results_io

__all__ = ['SERVERS', 'PackError', 'check', 'pack', 'read_sequence_list']


@dataclasses.dataclass(frozen=True)
class Server:
  """A server's submission layout."""

  name: str
  folders: bool  # <seq>/<seq>_NNN.txt (GOT-10k) or flat <seq>.txt
  needs_times: bool


SERVERS = {
    'got10k': Server('GOT-10k', True, True),
    'trackingnet': Server('TrackingNet', False, False),
}


class PackError(errors.UserError, ValueError):
  """Results that the server would reject: says what and how to fix it."""

  def __init__(self, what: str, fix: str):
    self.what, self.fix = what, fix
    super().__init__(what, fix)


def read_sequence_list(path) -> dict:
  """{name: frame count or None} from a list file: ``name`` or ``name frames`` per line."""
  out = {}
  with open(path, encoding='utf-8') as f:
    for line in f:
      words = line.replace(',', ' ').split()
      if words:
        out[words[0]] = int(words[1]) if len(words) > 1 else None
  if not out:
    raise PackError(
        f'the sequence list {path} is empty', 'one sequence name per line'
    )
  return out


def _examples(names) -> str:
  names = list(names)
  return ', '.join(names[:5]) + (
      f' and {len(names) - 5} more' if len(names) > 5 else ''
  )


def _repetition_boxes(results_dir, name: str, n_frames) -> list:
  files = results_io.find_repetition_files(results_dir, name)
  return [results_io.read_boxes(f, n_frames) for f in files]


def check(results_dir, expected: dict, server: Server) -> dict:
  """{seq: ([boxes per run], times or None)} for ``expected`` {name: frames or None}.

  Raises `PackError` naming every missing sequence, wrong line count, non-finite
  box or (GOT-10k) missing timing file.
  """
  missing, bad, loaded = [], [], {}
  for name, n_frames in expected.items():
    if results_io.find_result_file(results_dir, name) is None:
      missing.append(name)
      continue
    try:
      runs = _repetition_boxes(results_dir, name, n_frames)
    except results_io.ResultsFormatError as err:
      bad.append(str(err))
      continue
    for run in runs:
      if len(run) == 0 or not np.all(np.isfinite(run)):
        rows = np.nonzero(~np.all(np.isfinite(run), axis=1))[0] + 1
        bad.append(
            f'{name}: {"no boxes" if len(run) == 0 else "non-finite boxes"}'
            + (f' on lines {_examples(map(str, rows))}' if len(rows) else '')
        )
    time_file = results_io.find_time_file(results_dir, name)
    if server.needs_times and time_file is None:
      bad.append(f'{name}: no {name}_time.txt')
    loaded[name] = (
        runs,
        None if time_file is None else results_io.read_time_columns(time_file),
    )
  if missing:
    raise PackError(
        f'{len(missing)} of {len(expected)} {server.name} sequences have no results '
        f'in {results_dir}: {_examples(missing)}',
        'track them (re-run the evaluation, which resumes) or point --results '
        "at the tracker's folder",
    )
  if bad:
    raise PackError(
        f'{len(bad)} problems in {results_dir}: {"; ".join(bad[:5])}',
        'results need one finite x,y,w,h line per frame (and, for GOT-10k, '
        '<seq>_time.txt): re-track those sequences',
    )
  return loaded


def _members(loaded: dict, server: Server) -> dict:
  """{path in the zip: text} for checked results."""
  out = {}
  for name, (runs, times) in loaded.items():
    if not server.folders:
      out[f'{name}.txt'] = results_io.format_boxes(runs[0])
      continue
    for r, boxes in enumerate(runs, start=1):
      out[f'{name}/{name}_{r:03d}.txt'] = results_io.format_boxes(boxes)
    if times is not None:
      out[f'{name}/{name}_time.txt'] = ''.join(
          ','.join('%.8f' % t for t in row) + '\n' for row in times
      )
  return out


def pack(results_dir, expected: dict, dataset: str, out) -> list:
  """Checks the results, writes the zip atomically; returns the member names."""
  server = SERVERS[dataset]
  members = _members(check(results_dir, expected, server), server)
  results_io.atomic_write_zip(out, members)
  return sorted(members)
