"""Timing summaries shared by the benchmark scripts."""

import statistics


def summary(values) -> dict:
  """Median and range of per-repeat figures."""
  return {'median': statistics.median(values), 'min': min(values),
          'max': max(values)}


def fmt(s: dict, scale: float = 1.0, digits: int = 1) -> str:
  return (f'{s["median"] * scale:.{digits}f} [{s["min"] * scale:.{digits}f}, '
          f'{s["max"] * scale:.{digits}f}]')
