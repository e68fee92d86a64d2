"""Raw tracking results on disk: one ``x,y,w,h`` line per frame, one file per sequence.

Layout (pytracking): ``<results_dir>/<tracker_name>/<seq>.txt`` plus
``<seq>_time.txt`` (seconds per frame).  Reading also accepts the got10k
layouts ``<tracker_dir>/<seq>_001.txt`` and ``<tracker_dir>/<seq>/<seq>_001.txt``
with every repetition (``_002``, ``_003``: a list of runs, scored as the
got10k toolkit does) and timing files in ``times/`` (got10k OTB, MMOT).
``timing.json`` beside the results says how the times were measured
(`write_timing`): one stream, or a share of a batched step.

Line format: fields separated by commas, tabs and/or spaces (mixed is fine).
"Target absent" predictions are NaN rows in memory.  On disk they are a line
of NaNs (``nan,nan,nan,nan``, the default; np.loadtxt reads it) or, with
``empty='0'``, a single ``0`` (the Anti-UAV / MMOT accuracy convention).  When
reading, a blank line, a single ``0`` or a line with a NaN is an empty
prediction; blank lines at the end of a file are ignored.  ``0,0,0,0`` is a box
(all toolkits score it as one).  Writes are atomic (`atomic_write`: a
temporary file + ``os.replace`` on local disk; a bucket replaces an object
whole), so a crash never leaves a half-written results file.

Paths are local or URLs of etils.epath (``gs://bucket/run/...``): results
of a run whose WORKDIR is in a bucket are read and written there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile

from etils import epath
import numpy as np

from cost_jax import errors

__all__ = [
    'ResultsFormatError',
    'ResultsLengthError',
    'read_boxes',
    'write_boxes',
    'format_boxes',
    'read_times',
    'write_times',
    'result_path',
    'time_path',
    'find_result_file',
    'find_time_file',
    'write_sequence_results',
    'load_tracker_results',
    'is_local',
    'atomic_write',
    'atomic_write_text',
    'find_repetition_files',
    'read_time_columns',
    'atomic_write_zip',
    'write_timing',
    'read_timing',
    'timing_label',
    'TIMING',
]

TIMING = 'timing.json'

_SEPARATORS = re.compile(r'[,\s]+')


class ResultsFormatError(errors.UserError, ValueError):
  """A results file that cannot be parsed; names the file (and line) and the fix."""

  def __init__(
      self,
      path,
      problem: str,
      line: int | None = None,
      fix: str = 'write one x,y,w,h box per frame and line (commas or spaces)',
  ):
    self.path, self.line, self.problem = str(path), line, problem
    where = self.path if line is None else f'{self.path}, line {line}'
    super().__init__(f'{where}: {problem}', fix)


class ResultsLengthError(ResultsFormatError):
  """A results file whose number of boxes differs from the sequence length."""

  def __init__(self, path, expected: int, actual: int):
    self.expected, self.actual = expected, actual
    super().__init__(
        path,
        f'expected {expected} lines (one box per frame) but found {actual}',
        fix='write one box per frame (python -m cost_jax.analyze: or pass '
        '--allow_length_mismatch)',
    )


def _parse_line(text: str, path, line_no: int) -> np.ndarray:
  fields = [f for f in _SEPARATORS.split(text.strip()) if f]
  try:
    values = [float(f) for f in fields]
  except ValueError:
    raise ResultsFormatError(
        path, f'not a number in {text.strip()!r}', line_no
    ) from None
  if not values or values == [0.0]:
    return np.full(4, np.nan)
  if len(values) != 4:
    raise ResultsFormatError(
        path,
        f'expected 4 numbers x, y, w, h, got {len(values)}: '
        f'{text.strip()!r}',
        line_no,
    )
  return np.asarray(values, dtype=np.float64)


def _read_lines(path) -> list[str]:
  with epath.Path(path).open('r', encoding='utf-8') as f:
    lines = f.read().splitlines()
  while lines and not lines[-1].strip():
    lines.pop()
  return lines


def read_boxes(path, expected_len: int | None = None) -> np.ndarray:
  """(N, 4) float64 boxes from a results file; NaN rows are empty predictions.

  Raises ``ResultsLengthError`` (file, expected, actual) when ``expected_len``
  is given and differs, ``ResultsFormatError`` on a malformed line.
  """
  lines = _read_lines(path)
  if expected_len is not None and len(lines) != expected_len:
    raise ResultsLengthError(path, expected_len, len(lines))
  if not lines:
    return np.zeros((0, 4))
  return np.stack(
      [_parse_line(text, path, i + 1) for i, text in enumerate(lines)]
  )


def format_boxes(
    boxes, fmt: str = '%.3f', delimiter: str = ',', empty: str = 'nan'
) -> str:
  """Text of a results file; ``empty`` ('nan' or '0') says how NaN rows are written."""
  boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
  if empty not in ('nan', '0'):
    raise ValueError(f"empty must be 'nan' or '0', got {empty!r}")
  rows = []
  for box in boxes:
    if np.isnan(box).any():
      rows.append(delimiter.join(['nan'] * 4) if empty == 'nan' else '0')
    else:
      rows.append(delimiter.join(fmt % v for v in box))
  return ''.join(r + '\n' for r in rows)


def is_local(path) -> bool:
  """Whether ``path`` is a local path, not a URL (gs://..., etils.epath)."""
  return '://' not in os.fspath(path)


def atomic_write(path, data) -> None:
  """Writes ``data`` to ``path`` so that it appears whole or not at all.

  ``data``: text (written as UTF-8), bytes, or a function that writes a
  binary file object it is given (``data(f)``; it may seek).  The folder is
  created.  Local: a temporary file beside ``path``, then ``os.replace``.  A
  URL (etils.epath: gs://...): the data, first written to a local temporary
  file, are uploaded to ``path`` in one write, which a bucket makes visible
  only once complete.
  """
  if isinstance(data, str):
    data = data.encode('utf-8')
  write = data if callable(data) else (lambda f: f.write(data))
  if not is_local(path):
    path = epath.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as tmp:
      write(tmp)
      tmp.seek(0)
      with path.open('wb') as f:
        shutil.copyfileobj(tmp, f)
    return
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
      dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp'
  )
  try:
    with os.fdopen(fd, 'wb') as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def atomic_write_text(path, text: str) -> None:
  """Writes ``text`` to ``path`` atomically (`atomic_write`)."""
  atomic_write(path, text)


def atomic_write_zip(path, members: dict) -> None:
  """Writes a zip of ``members`` {name in the zip: str or bytes} atomically."""

  def write(f):
    with zipfile.ZipFile(f, 'w', zipfile.ZIP_DEFLATED) as z:
      for name in sorted(members):
        z.writestr(name, members[name])

  atomic_write(path, write)


def write_boxes(
    path, boxes, fmt: str = '%.3f', delimiter: str = ',', empty: str = 'nan'
) -> None:
  """Writes one box per line, atomically."""
  atomic_write_text(path, format_boxes(boxes, fmt, delimiter, empty))


def read_times(path) -> np.ndarray:
  """All numbers of a timing file, flattened (got10k files may hold one column per run)."""
  values = [
      float(f)
      for line in _read_lines(path)
      for f in _SEPARATORS.split(line.strip())
      if f
  ]
  return np.asarray(values, dtype=np.float64)


def read_time_columns(path) -> np.ndarray:
  """(N, R) seconds of a timing file: one row per frame, one column per run (got10k)."""
  rows = [
      [float(f) for f in _SEPARATORS.split(line.strip()) if f]
      for line in _read_lines(path)
  ]
  width = max((len(r) for r in rows), default=1)
  if any(len(r) != width for r in rows):
    raise ResultsFormatError(
        path,
        f'rows of different lengths (expected {width} columns)',
        fix='write one row of seconds per frame',
    )
  return np.asarray(rows, dtype=np.float64).reshape(-1, width)


def write_times(path, times, fmt: str = '%.6f') -> None:
  """Writes one per-frame time (seconds) per line, atomically."""
  times = np.asarray(times, dtype=np.float64).reshape(-1)
  atomic_write_text(path, ''.join(fmt % t + '\n' for t in times))


def result_path(results_dir, tracker_name: str, seq_name: str) -> str:
  """``<results_dir>/<tracker_name>/<seq>.txt`` (pytracking layout)."""
  return os.path.join(os.fspath(results_dir), tracker_name, f'{seq_name}.txt')


def time_path(results_dir, tracker_name: str, seq_name: str) -> str:
  """``<results_dir>/<tracker_name>/<seq>_time.txt``."""
  return os.path.join(
      os.fspath(results_dir), tracker_name, f'{seq_name}_time.txt'
  )


def _first_existing(candidates) -> str | None:
  return next((c for c in candidates if epath.Path(c).is_file()), None)


def find_result_file(tracker_dir, seq_name: str) -> str | None:
  """The results file of ``seq_name`` in any supported layout, or None."""
  d = os.fspath(tracker_dir)
  return _first_existing(
      [
          os.path.join(d, f'{seq_name}.txt'),
          os.path.join(d, f'{seq_name}_001.txt'),
          os.path.join(d, seq_name, f'{seq_name}_001.txt'),
      ]
  )


def find_time_file(tracker_dir, seq_name: str) -> str | None:
  """The timing file of ``seq_name`` in any supported layout, or None."""
  d = os.fspath(tracker_dir)
  return _first_existing(
      [
          os.path.join(d, f'{seq_name}_time.txt'),
          os.path.join(d, 'times', f'{seq_name}_time.txt'),
          os.path.join(d, seq_name, f'{seq_name}_time.txt'),
      ]
  )


def find_repetition_files(tracker_dir, seq_name: str) -> list[str]:
  """Every run of ``seq_name``: ``<seq>.txt``, else all ``<seq>_NNN.txt`` (got10k), sorted."""
  d = os.fspath(tracker_dir)
  single = os.path.join(d, f'{seq_name}.txt')
  if epath.Path(single).is_file():
    return [single]
  run = re.compile(re.escape(seq_name) + r'_\d{3}\.txt')
  for folder in (d, os.path.join(d, seq_name)):
    if epath.Path(folder).is_dir():
      names = (p.name for p in epath.Path(folder).iterdir())
      runs = sorted(n for n in names if run.fullmatch(n))
      if runs:
        return [os.path.join(folder, n) for n in runs]
  return []


def write_timing(tracker_dir, batch_size: int) -> None:
  """Records how ``<seq>_time.txt`` was measured: ``batch_size`` sequences per step."""
  atomic_write_text(
      os.path.join(os.fspath(tracker_dir), TIMING),
      json.dumps({'batch_size': int(batch_size)}) + '\n',
  )


def read_timing(tracker_dir) -> dict | None:
  """The ``timing.json`` of a results folder, or None (toolkit results: one stream)."""
  path = epath.Path(tracker_dir) / TIMING
  if not path.is_file():
    return None
  return json.loads(path.read_text())


def timing_label(timing: dict | None) -> str:
  """What an FPS number measured: 'single-stream' or 'batched x B' (B sequences a step)."""
  batch = int((timing or {}).get('batch_size', 1))
  return 'single-stream' if batch <= 1 else f'batched x{batch}'


def write_sequence_results(
    results_dir,
    tracker_name: str,
    seq_name: str,
    boxes,
    times=None,
    **fmt_kwargs,
) -> str:
  """Writes a sequence's boxes (and times) in the pytracking layout; returns the path."""
  path = result_path(results_dir, tracker_name, seq_name)
  write_boxes(path, boxes, **fmt_kwargs)
  if times is not None:
    write_times(time_path(results_dir, tracker_name, seq_name), times)
  return path


def load_tracker_results(
    tracker_dir,
    sequences,
    *,
    strict_length: bool = True,
    skip_missing: bool = False,
) -> tuple[dict, dict]:
  """Reads one tracker's results for ``sequences`` (objects with ``.name`` and ``.boxes``).

  Returns ``(boxes_by_name, times_by_name)``; a sequence with several
  got10k runs has a list of (N, 4) arrays; sequences without a timing
  file are absent from the second dict.  A missing results file raises
  ``FileNotFoundError`` unless ``skip_missing``; a wrong line count raises
  ``ResultsLengthError`` unless ``strict_length`` is False (then the
  protocol's own length rule applies).
  """
  boxes, times = {}, {}
  for seq in sequences:
    runs = find_repetition_files(tracker_dir, seq.name)
    if not runs:
      if skip_missing:
        continue
      raise errors.NotFound(
          f'no results for sequence {seq.name!r} in {os.fspath(tracker_dir)} (looked for '
          f'{seq.name}.txt, {seq.name}_001.txt and {seq.name}/{seq.name}_001.txt)',
          'track that sequence, or score only the common ones (analyze --skip_missing)',
      )
    expected = len(seq.boxes) if strict_length else None
    loaded = [read_boxes(path, expected) for path in runs]
    boxes[seq.name] = loaded[0] if len(loaded) == 1 else loaded
    tpath = find_time_file(tracker_dir, seq.name)
    if tpath is not None:
      times[seq.name] = read_times(tpath)
  return boxes, times
