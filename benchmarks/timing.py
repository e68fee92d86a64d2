"""Timing summaries shared by the benchmark scripts."""

import statistics
import time


def summary(values) -> dict:
  """Median and range of per-repeat figures."""
  return {'median': statistics.median(values), 'min': min(values),
          'max': max(values)}


def fmt(s: dict, scale: float = 1.0, digits: int = 1) -> str:
  return (f'{s["median"] * scale:.{digits}f} [{s["min"] * scale:.{digits}f}, '
          f'{s["max"] * scale:.{digits}f}]')


def rates(call, per_call, calls, repeats):
  """(seconds of the first, untimed call, [per_call * calls / s per repeat])."""
  start = time.perf_counter()
  call()
  first_s = time.perf_counter() - start
  out = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(calls):
      call()
    out.append(per_call * calls / (time.perf_counter() - start))
  return first_s, out
