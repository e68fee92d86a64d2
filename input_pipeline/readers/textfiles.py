"""Tolerant readers for the small text files tracking datasets ship.

Delimiters vary between datasets and even between files of one dataset (OTB
mixes commas, tabs and spaces), so every numeric reader accepts comma, tab,
semicolon and whitespace separators, skips blank lines at the end, reads
'NaN' / 'nan' as NaN, and raises `ReadError` naming the file and line for
anything else it cannot parse.
"""

from __future__ import annotations

import os
import re

import numpy as np

from input_pipeline.sequence import ReadError

__all__ = [
    'read_table',
    'read_box_file',
    'read_flags',
    'read_text_line',
    'read_name_list',
    'read_key_values',
]

_SEPARATORS = re.compile(r'[,;\t ]+')


def _read_text(path) -> str:
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except FileNotFoundError:
    raise ReadError(
        path, 'file not found', fix='check the dataset layout'
    ) from None
  return data.decode('utf-8-sig', errors='replace')


def _content_lines(path) -> list[str]:
  """The file's lines, without the blank lines at its end."""
  lines = _read_text(path).splitlines()
  while lines and not lines[-1].strip():
    lines.pop()
  return lines


def _split(line: str) -> list[str]:
  return [t for t in _SEPARATORS.split(line.strip()) if t]


def _parse_numbers(path, lineno: int, tokens: list[str]) -> list[float]:
  try:
    return [float(t) for t in tokens]
  except ValueError:
    bad = next(t for t in tokens if not _is_number(t))
    raise ReadError(
        path,
        f'cannot read {bad!r} as a number',
        line=lineno,
        fix='each line must hold numbers separated by commas, tabs or '
        'spaces (NaN allowed); correct or remove that line',
    ) from None


def _is_number(token: str) -> bool:
  try:
    float(token)
    return True
  except ValueError:
    return False


def read_table(path, ncols: int | None = None) -> np.ndarray:
  """Reads a numeric table, one row per line, as float64 of shape (rows, ncols).

  `ncols=None` takes the column count from the first line.  Blank lines are
  allowed only at the end of the file.
  """
  lines = _content_lines(path)
  rows = [_split(line) for line in lines]
  if not rows:
    return np.zeros((0, ncols or 0))
  expected = ncols if ncols is not None else len(rows[0])
  for i, tokens in enumerate(rows):
    if len(tokens) != expected:
      problem = (
          'blank line before the end of the file'
          if not tokens
          else f'expected {expected} values, found {len(tokens)}: {lines[i].strip()!r}'
      )
      raise ReadError(
          path,
          problem,
          line=i + 1,
          fix=f'every line must hold {expected} numbers (use NaN for an '
          f'unknown value)',
      )
  flat = [t for tokens in rows for t in tokens]
  try:
    values = np.array(flat, dtype=np.float64)
  except ValueError:
    for i, tokens in enumerate(rows):  # find the offending line
      _parse_numbers(path, i + 1, tokens)
    raise
  return values.reshape(len(rows), expected)


def read_box_file(path) -> np.ndarray:
  """Reads an `x, y, w, h` box file (one box per line) as an (N, 4) float64 array."""
  return read_table(path, ncols=4)


def read_flags(path) -> np.ndarray:
  """Reads per-frame integer flags, one per line or all on one line (LaSOT), as int64."""
  values = []
  for i, line in enumerate(_content_lines(path)):
    values.extend(_parse_numbers(path, i + 1, _split(line)))
  flags = np.asarray(values, dtype=np.float64)
  if np.any(~np.isfinite(flags)):
    raise ReadError(
        path,
        'flag file holds NaN or infinite values',
        fix='write one integer flag per frame',
    )
  return flags.astype(np.int64)


def read_text_line(path) -> str | None:
  """The first non-empty line of a text file, stripped; None if the file is missing."""
  if not os.path.isfile(path):
    return None
  for line in _read_text(path).splitlines():
    if line.strip():
      return line.strip()
  return ''


def read_name_list(path) -> list[str]:
  """Non-empty, stripped lines (split lists, list.txt)."""
  return [line.strip() for line in _content_lines(path) if line.strip()]


def read_key_values(path) -> dict[str, str]:
  """`key: value` (or `key = value`) lines, ignoring `[section]` headers (meta_info.ini)."""
  out = {}
  for line in _content_lines(path):
    line = line.strip()
    if not line or line.startswith(('[', '#', ';')):
      continue
    match = re.match(r'([^:=]+?)\s*[:=]\s*(.*)$', line)
    if match:
      out[match.group(1).strip().lower()] = match.group(2).strip()
  return out
