"""Batched benchmark runner: track many sequences at once, write raw results.

    report = run_sequences(engine, sequences, 'runs/demo/results', 'cost',
                           batch_size=16, fingerprint={...})

B slots run in lock step: every device call is ONE jitted step over the B
search crops with per-slot cached template/text features (fixed B, so no
recompilation); a slot whose sequence ends is refilled with the next
sequence.  Results: ``<results_dir>/<tracker_name>/<seq>.txt`` (x,y,w,h per
frame, pytracking layout) and ``<seq>_time.txt`` (seconds per frame; frame 0
is the initialisation, later frames the step time shared by the active
slots; ``timing.json`` records B).  A ``tracker.json`` manifest records
what produced the folder: a re-run with the same fingerprint only tracks the
sequences without results, another fingerprint is refused (results of other
trackers are never overwritten).  Speed: compilation is timed separately (warm-up) and FPS
excludes each sequence's first frame.  ``results_dir`` may be a URL (gs://...,
etils.epath).

Unreadable frames (`cost_jax.tracking.bad_frames`): the last box is carried
over them (time 0) and they are listed in ``<seq>_bad_frames.txt``
(``frame,path``) and the report; the other slots go on.  A sequence that
stops (``track.on_bad_frame=stop``, more than ``track.max_bad_frames``, or an
unreadable first frame) gets no results file and is named in
``report['failed']``; no new sequence starts after a stop, the running ones
finish.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import logging
import os
import time

from etils import epath
import jax
import numpy as np

from cost_jax.evaluation import results_io
from cost_jax.tracking.bad_frames import BadFrames, FrameReadError, read_frame, read_or_error
from cost_jax.tracking.engine import Engine, SequenceState

__all__ = [
    'run_sequences',
    'read_frame',
    'FrameReadError',
    'ResultsConflictError',
    'check_manifest',
    'pending_sequences',
    'MANIFEST',
    'BAD_FRAMES_SUFFIX',
]

MANIFEST = 'tracker.json'
BAD_FRAMES_SUFFIX = '_bad_frames.txt'


class ResultsConflictError(ValueError):
  """The results folder holds results of another tracker/config."""


def check_manifest(results_dir, tracker_name: str, fingerprint: dict) -> str:
  """Creates or checks ``<results_dir>/<tracker_name>/tracker.json``; returns the folder.

  Refuses (ResultsConflictError) a folder with results but no manifest, or a
  manifest with another fingerprint.
  """
  folder = os.path.join(os.fspath(results_dir), tracker_name)
  path = os.path.join(folder, MANIFEST)
  fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
  if epath.Path(path).is_file():
    stored = json.loads(epath.Path(path).read_text()).get('fingerprint')
    if stored != fingerprint:
      keys = sorted(
          k
          for k in set(stored or {}) | set(fingerprint)
          if (stored or {}).get(k) != fingerprint.get(k)
      )
      raise ResultsConflictError(
          f'{folder} holds results of tracker {tracker_name!r} made with another config or '
          f'weights (differs in: {", ".join(keys) or "everything"}; see {path}). Use another '
          'tracker name (--config.track.tracker_name=...) or delete that folder.'
      )
    return folder
  if epath.Path(folder).is_dir() and any(
      p.name.endswith('.txt') for p in epath.Path(folder).iterdir()
  ):
    raise ResultsConflictError(
        f'{folder} already holds results not written by this runner (no {MANIFEST}); refusing '
        'to mix them: use another tracker name (--config.track.tracker_name=...).'
    )
  results_io.atomic_write_text(
      path,
      json.dumps(
          {'tracker_name': tracker_name, 'fingerprint': fingerprint},
          indent=1,
          sort_keys=True,
      )
      + '\n',
  )
  return folder


def pending_sequences(folder: str, sequences) -> list:
  """The sequences without a complete results file; a wrong line count is an error."""
  pending = []
  for seq in sequences:
    path = results_io.find_result_file(folder, seq.name)
    if path is None:
      pending.append(seq)
      continue
    try:
      results_io.read_boxes(path, len(seq))
    except results_io.ResultsLengthError as e:
      raise results_io.ResultsLengthError(path, e.expected, e.actual) from None
  return pending


@dataclasses.dataclass
class _Slot:
  """One sequence being tracked in a batch slot."""

  seq: object
  state: SequenceState
  boxes: list
  times: list
  bad: BadFrames
  caches: tuple  # batch-1 (template, text): re-detection (tracking.search)
  next_frame: concurrent.futures.Future | None = None
  stopped: bool = False

  @property
  def index(self) -> int:
    return len(self.boxes)


@jax.jit  # (donating the caches would save a copy on GPU; CPU ignores donation)
def _set_slot(batched, single, index):
  """Writes a batch-1 cache into slot ``index`` of the batch-B cache."""

  def put(b, s):
    return s if b.shape == s.shape else b.at[index].set(s[0])

  return jax.tree.map(put, batched, single)


class _Batch:
  """The B-slot state: device caches, host crops/geometry, prefetching."""

  def __init__(self, engine: Engine, batch_size: int, pool, policy=('skip', 0)):
    self.engine, self.size, self.pool = engine, batch_size, pool
    self.policy = policy  # (on_bad_frame, max_bad_frames)
    self.slots: list[_Slot | None] = [None] * batch_size
    self.template = self.text = None
    s = engine.spec.search_size
    self.crops = np.zeros((batch_size, s, s, 3), np.uint8)
    self.geometry = np.zeros((batch_size, 5), np.float32)
    self.geometry[:, 2] = 1.0

  def _read(self, seq, i):
    return self.pool.submit(
        read_or_error, seq.frames[i]
    )  # BadFrames names the sequence

  def start(self, i: int, seq) -> _Slot:
    """Initialises ``seq`` in slot i (frame 0 read, template/text encoded)."""
    t0 = time.perf_counter()
    frame = read_frame(seq.frames[0], seq.name)
    tokens = self.engine.tokenize(seq.language, seq.name)
    what = f'initial box of sequence {seq.name!r} ({seq.frames[0]})'
    state, z = self.engine.start(frame, seq.init_box, what)
    template, text = self.engine.encode(z, tokens)
    if self.template is None:
      self.template, self.text = self.engine.batch_caches(
          template, text, self.size
      )
    self.template, self.text = _set_slot(
        (self.template, self.text), (template, text), i
    )
    jax.block_until_ready(self.template)
    slot = _Slot(
        seq,
        state,
        [state.box],
        [time.perf_counter() - t0],
        BadFrames(f'sequence {seq.name!r}', *self.policy),
        (template, text),
    )
    if len(seq) > 1:
      slot.next_frame = self._read(seq, 1)
    self.slots[i] = slot
    return slot

  def step(self) -> tuple[float, int]:
    """Tracks one frame of every active slot; -> (wall time, frames tracked).

    A slot whose frame is unreadable keeps its box; one that must stop there
    is marked ``stopped``.
    """
    active = [i for i, s in enumerate(self.slots) if s is not None]
    frames = {i: self.slots[i].next_frame.result() for i in active}
    readable = [i for i in active if not isinstance(frames[i], FrameReadError)]
    t0 = time.perf_counter()

    def crop(i):  # cv2 releases the GIL: crops run in parallel threads
      self.crops[i], self.geometry[i] = self.engine.search_crop(
          frames[i], self.slots[i].state
      )

    if len(readable) > 1:
      list(self.pool.map(crop, readable))
    elif readable:
      crop(readable[0])
    out = None
    if readable:
      out = self.engine.step(
          self.engine.variables,
          self.crops,
          self.template,
          self.text,
          self.geometry,
      )
    for i in active:  # prefetch while the device works
      slot = self.slots[i]
      nxt = slot.index + 1
      slot.next_frame = (
          self._read(slot.seq, nxt) if nxt < len(slot.seq) else None
      )
    out = (
        None if out is None else np.asarray(out)
    )  # (B, 5): cx, cy, w, h, score
    rows = {
        i: self.engine.redetect(
            frames[i],
            self.slots[i].state,
            out[i],
            self.geometry[i],
            self.slots[i].caches,
        )
        for i in readable
    }
    elapsed = time.perf_counter() - t0
    for i in active:
      slot = self.slots[i]
      if i in readable:
        row = rows[i]
        slot.boxes.append(self.engine.update(slot.state, row[:4], row[4]))
        slot.times.append(elapsed / len(readable))
      else:  # the last box carried over
        slot.stopped = slot.bad.add(slot.index, frames[i])
        slot.boxes.append(slot.state.box)
        slot.times.append(0.0)
    return elapsed, len(readable)


def _warm_up(engine: Engine, batch_size: int) -> float:
  """Compiles the step (batch B) and the encoders (batch 1); returns seconds."""
  t0 = time.perf_counter()
  spec, v = engine.spec, engine.variables
  z = np.zeros((1, spec.template_size, spec.template_size, 3), np.uint8)
  tokens = None
  if spec.language:
    tokens = (
        np.zeros((1, spec.text_len), np.int32),
        np.ones((1, spec.text_len), np.int32),
    )
  template, text = engine.encode(z, tokens)
  batch = _Batch(engine, batch_size, None)
  caches = _set_slot(
      engine.batch_caches(template, text, batch_size), (template, text), 0
  )
  jax.block_until_ready(engine.step(v, batch.crops, *caches, batch.geometry))
  return time.perf_counter() - t0


def _finish(folder, slot: _Slot, report: dict) -> None:
  seq = slot.seq
  bad_path = os.path.join(folder, f'{seq.name}{BAD_FRAMES_SUFFIX}')
  if slot.bad.frames:
    results_io.atomic_write_text(bad_path, slot.bad.lines())
    report['bad_frames'][seq.name] = slot.bad.frames
    logging.warning('%s', slot.bad.summary())
  elif epath.Path(bad_path).exists():  # from an earlier run, frames since fixed
    epath.Path(bad_path).unlink()
  results_io.write_boxes(
      os.path.join(folder, f'{seq.name}.txt'), np.stack(slot.boxes)
  )
  results_io.write_times(
      os.path.join(folder, f'{seq.name}_time.txt'), slot.times
  )
  tracked = sum(slot.times[1:])
  report['sequences'][seq.name] = {
      'frames': len(seq),
      'init_s': slot.times[0],
      'fps': (len(seq) - 1 - len(slot.bad.frames)) / tracked
      if tracked > 0
      else None,
  }


def _fail(seq, reason: str, report: dict) -> None:
  """Records a sequence that stopped (no results file: a re-run tracks it again)."""
  logging.warning('%s; its results are not written', reason)
  report['failed'][seq.name] = reason


def run_sequences(
    engine: Engine,
    sequences,
    results_dir,
    tracker_name: str,
    *,
    batch_size: int = 16,
    fingerprint: dict | None = None,
    log_every: int = 10,
    on_bad_frame: str = 'skip',
    max_bad_frames: int = 50,
) -> dict:
  """Tracks the unfinished ``sequences`` in batches of ``batch_size``; -> speed report.

  The report: {'tracked', 'skipped', 'compile_s', 'fps' (all tracked frames
  after the first of each sequence), 'init_s' (mean), 'sequences': {name:
  {'frames', 'init_s', 'fps'}}, 'bad_frames': {name: [(index, path)]},
  'failed': {name: reason}}.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')
  folder = check_manifest(results_dir, tracker_name, fingerprint or {})
  sequences = list(sequences)
  todo = pending_sequences(folder, sequences)
  report = {
      'tracker': tracker_name,
      'batch_size': batch_size,
      'skipped': sorted({s.name for s in sequences} - {s.name for s in todo}),
      'sequences': {},
      'bad_frames': {},
      'failed': {},
  }
  batch_size = max(
      1, min(batch_size, len(todo))
  )  # no idle slots for short lists
  report['batch_size'] = batch_size
  if (
      todo
  ):  # labels the FPS 'batched xB' (cost_jax.analyze); a resumed run's smaller
    # batch does not relabel the sequences timed in larger ones
    earlier = (results_io.read_timing(folder) or {}).get('batch_size', 0)
    results_io.write_timing(folder, max(batch_size, int(earlier)))
  report['compile_s'] = _warm_up(engine, batch_size) if todo else 0.0
  queue = collections.deque(todo)
  frames = step_time = 0.0
  halt = False  # after a stop: no new sequence starts, the running ones finish
  with concurrent.futures.ThreadPoolExecutor(
      max(2, min(batch_size, 8))
  ) as pool:
    batch = _Batch(engine, batch_size, pool, (on_bad_frame, max_bad_frames))
    while True:
      for i in range(batch_size):
        while batch.slots[i] is None and queue and not halt:
          started = _start(batch, i, queue.popleft(), folder, report)
          halt = not started and on_bad_frame == 'stop'
      active = sum(s is not None for s in batch.slots)
      if not active:
        break
      elapsed, tracked = batch.step()
      step_time += elapsed
      frames += tracked
      for i, slot in enumerate(batch.slots):
        if slot is not None and slot.stopped:
          _fail(slot.seq, slot.bad.stop_reason(), report)
          batch.slots[i] = None
          halt = True
        elif slot is not None and slot.index == len(slot.seq):
          _finish(folder, slot, report)
          batch.slots[i] = None
          done = len(report['sequences'])
          if log_every and done % log_every == 0:
            logging.info(
                '%s: %d/%d sequences, %.1f frames/s',
                tracker_name,
                done,
                len(todo),
                frames / max(step_time, 1e-9),
            )
  report['tracked'] = list(report['sequences'])
  report['fps'] = frames / step_time if step_time > 0 else None
  inits = [r['init_s'] for r in report['sequences'].values()]
  report['init_s'] = float(np.mean(inits)) if inits else None
  return report


def _start(batch: _Batch, i: int, seq, folder, report: dict) -> bool:
  """Starts ``seq`` in slot i; False when its first frame is unreadable (the initial box
  refers to it: the sequence fails).  A one-frame sequence is finished at once.
  """
  try:
    slot = batch.start(i, seq)
  except FrameReadError as e:
    _fail(seq, f'{e}: the initial box refers to it', report)
    return False
  if len(slot.seq) == 1:
    _finish(folder, slot, report)
    batch.slots[i] = None
  return True
