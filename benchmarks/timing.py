"""Timing summaries shared by the benchmark scripts."""

import statistics
import time


def summary(values) -> dict:
  """Median and range of per-repeat figures."""
  return {
      'median': statistics.median(values),
      'min': min(values),
      'max': max(values),
  }


def fmt(s: dict, scale: float = 1.0, digits: int = 1) -> str:
  return (
      f'{s["median"] * scale:.{digits}f} [{s["min"] * scale:.{digits}f}, '
      f'{s["max"] * scale:.{digits}f}]'
  )


def loop_rate(call, per_call, calls):
  """A repeat: runs ``call`` ``calls`` times, -> per_call * calls / s."""

  def repeat():
    start = time.perf_counter()
    for _ in range(calls):
      call()
    return per_call * calls / (time.perf_counter() - start)

  return repeat


def first_call_s(call) -> float:
  """Seconds of one (untimed, compiling) call."""
  start = time.perf_counter()
  call()
  return time.perf_counter() - start


def alternate(repeats_by_name: dict, repeats: int) -> dict:
  """{name: repeat() -> figure} -> {name: [figure per repeat]}.

  The repeats take turns (A, B, A, B, ...), so that a machine shared with
  other work slows every contender alike.
  """
  out = {name: [] for name in repeats_by_name}
  for _ in range(repeats):
    for name, repeat in repeats_by_name.items():
      out[name].append(repeat())
  return out


def rates(call, per_call, calls, repeats):
  """(seconds of the first, untimed call, [per_call * calls / s per repeat])."""
  first_s = first_call_s(call)
  return first_s, alternate({'': loop_rate(call, per_call, calls)}, repeats)['']


def stream(track, reset, frames, boxes):
  """(first_s, repeat() -> frames/s) of ``track(frame)`` over frames[1:].

  Only ``track`` is timed.  With random weights the box wanders and grows,
  so after every frame ``reset(box)`` puts the state back on the true box
  (every frame then crops a realistic window); ``reset(None)`` restarts
  the sequence on frames[0].
  """
  reset(None)
  first_s = first_call_s(lambda: track(frames[1]))

  def repeat():
    reset(None)
    elapsed = 0.0
    for frame, box in zip(frames[1:], boxes[1:]):
      start = time.perf_counter()
      track(frame)
      elapsed += time.perf_counter() - start
      reset(box)
    return (len(frames) - 1) / elapsed

  return first_s, repeat
