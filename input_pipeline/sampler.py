"""TransT's pair sampling (`ltr/data/sampler.py::TrackingSampler`, 'interval' mode), in numpy.

One draw, all from a given `np.random.Generator` (so a draw is a pure function
of the generator's seed):

1. a dataset with probability proportional to its ratio;
2. a sequence uniformly from it, redrawn until it is *accepted*: a video needs
   more than 4 visible frames and at least 20 frames, an image (1-frame
   sequence) a visible box;
3. the template: a random visible frame;
4. the search frame: a random *labelled* frame in
   ``[t - max_gap - g, t + max_gap + g)`` (clipped to the video), g = 0 and
   growing by 5 until one exists.  Unlike TransT, whose search frame is always
   visible, a frame whose files mark the target absent (absence / occlusion /
   out-of-view flag) may be drawn: the pair then has no target and the
   trainer makes all its labels negative.  Frames whose box is invalid
   (NaN, zero or negative size, not flagged absent) are never drawn.

Image datasets (COCO) give template = search = the one frame.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence as SequenceT

import numpy as np

from input_pipeline.sequence import Sequence

__all__ = [
    'PairSpec',
    'PairSampler',
    'DatasetPool',
    'absent_mask',
    'is_accepted',
    'sample_frame_ids',
    'shard_indices',
    'nearest_visible',
]

MIN_VISIBLE = 4  # TransT: visible.sum() > 2 * (num_template + num_search) = 4.
MIN_LENGTH = 20
GAP_STEP = 5
MAX_SEQUENCE_DRAWS = 1000  # Redraws of a rejected sequence before giving up.


@dataclasses.dataclass(frozen=True)
class PairSpec:
  """One sampled pair: a sequence and its template and search frame indices."""

  dataset: str
  index: int  # Position of the sequence in its dataset's list.
  sequence: Sequence
  template: int
  search: int

  @property
  def search_visible(self) -> bool:
    return bool(self.sequence.visible[self.search])


def absent_mask(seq: Sequence) -> np.ndarray:
  """Frames whose files say the target is absent (usable as negative search frames).

  Uses `extra['absent']` when a reader provides it.  Otherwise, for datasets
  that label absence (`extra['absent_labels']`), a non-visible frame counts as
  absent when its stored box is the all-zero absence marker or a valid box that
  a flag file marked absent; a NaN or non-positive stored box is ambiguous
  (absent or broken annotation) and is not used.
  """
  if 'absent' in seq.extra:
    return np.asarray(seq.extra['absent'], bool).reshape(-1)[: len(seq)]
  if not seq.extra.get('absent_labels'):
    return np.zeros(len(seq), bool)
  raw = np.asarray(seq.extra.get('raw_boxes', seq.boxes), np.float64).reshape(
      -1, 4
  )
  with np.errstate(invalid='ignore'):
    zero = np.all(raw == 0, axis=1)
    valid = np.all(np.isfinite(raw), axis=1) & (raw[:, 2] > 0) & (raw[:, 3] > 0)
  return ~seq.visible & (zero | valid)


def is_accepted(seq: Sequence) -> bool:
  """TransT's test: a video with > 4 visible frames and >= 20 frames; an image if visible."""
  if len(seq) == 1:
    return bool(seq.visible[0])
  return int(seq.visible.sum()) > MIN_VISIBLE and len(seq) >= MIN_LENGTH


def _choose(
    rng: np.random.Generator, mask: np.ndarray, lo: int, hi: int
) -> int | None:
  """A uniformly drawn index in [lo, hi) where `mask` is True, or None."""
  lo, hi = max(lo, 0), min(hi, mask.shape[0])
  ids = np.flatnonzero(mask[lo:hi]) + lo if hi > lo else np.zeros(0, int)
  return None if ids.size == 0 else int(ids[rng.integers(ids.size)])


def sample_frame_ids(
    rng: np.random.Generator,
    visible: np.ndarray,
    usable: np.ndarray,
    max_gap: int,
) -> tuple[int, int]:
  """(template, search): template visible, search `usable` within the growing gap."""
  template = _choose(rng, visible, 0, visible.shape[0])
  if template is None:
    raise ValueError('sample_frame_ids: the sequence has no visible frame')
  gap = 0
  while True:
    search = _choose(
        rng, usable, template - max_gap - gap, template + max_gap + gap
    )
    if search is not None:
      return template, search
    gap += GAP_STEP  # Not reached when usable includes the template (it always does).


def nearest_visible(visible: np.ndarray, index: int) -> int:
  """The visible frame closest in time to `index` (the earlier one on ties)."""
  ids = np.flatnonzero(visible)
  return int(ids[np.argmin(np.abs(ids - index))])


def shard_indices(
    count: int, process_index: int, process_count: int, name: str
) -> np.ndarray:
  """This process's sequence indices: every `process_count`-th from `process_index`.

  With fewer sequences than processes every process uses all of them (with a
  warning): the samples then overlap, but each process still draws its own
  stream.
  """
  if count < process_count:
    logging.warning(
        '%s: %d sequences for %d processes; every process samples from all of '
        'them (the processes then share sequences).',
        name,
        count,
        process_count,
    )
    return np.arange(count)
  return np.arange(process_index, count, process_count)


class DatasetPool:
  """The sequences of one dataset that this process samples from."""

  def __init__(
      self,
      name: str,
      sequences: SequenceT[Sequence],
      ratio: float,
      indices: np.ndarray | None = None,
  ):
    self.name = name
    self.sequences = sequences
    self.ratio = float(ratio)
    indices = (
        np.arange(len(sequences)) if indices is None else np.asarray(indices)
    )
    # Materialised lists are filtered once; lazy ones (COCO) are tested per draw.
    self.lazy = not isinstance(sequences, list)
    if not self.lazy:
      indices = np.asarray(
          [i for i in indices if is_accepted(sequences[i])], np.int64
      )
    self.indices = indices
    self.usable = {}  # sequence index -> visible | absent mask (cached).
    if indices.size == 0:
      raise ValueError(
          f'{name}: no usable sequence (a video needs > {MIN_VISIBLE} visible '
          f'frames and >= {MIN_LENGTH} frames, an image a valid box); check the '
          f'annotations or remove {name!r} from --config.data.train_datasets'
      )

  def __len__(self) -> int:
    return int(self.indices.size)

  def draw(self, rng: np.random.Generator) -> tuple[int, Sequence]:
    """(index, sequence) of an accepted sequence drawn uniformly."""
    for _ in range(MAX_SEQUENCE_DRAWS):
      index = int(self.indices[rng.integers(self.indices.size)])
      seq = self.sequences[index]
      if not self.lazy or is_accepted(seq):
        return index, seq
    raise ValueError(
        f'{self.name}: {MAX_SEQUENCE_DRAWS} draws found no usable sequence '
        f'(> {MIN_VISIBLE} visible frames and >= {MIN_LENGTH} frames)'
    )

  def usable_frames(self, index: int, seq: Sequence) -> np.ndarray:
    """Frames a search frame may be drawn from: visible or labelled absent."""
    mask = self.usable.get(index)
    if mask is None:
      mask = seq.visible | absent_mask(seq)
      if not self.lazy:
        self.usable[index] = mask
    return mask


class PairSampler:
  """Draws `PairSpec`s from several `DatasetPool`s by their ratios (TransT)."""

  def __init__(self, pools: SequenceT[DatasetPool], max_gap: int = 100):
    self.pools = [p for p in pools if p.ratio > 0]
    if not self.pools:
      raise ValueError(
          'no training dataset with a ratio > 0: set --config.data.ratios.<name>'
      )
    ratios = np.asarray([p.ratio for p in self.pools], np.float64)
    self.probs = ratios / ratios.sum()
    self.max_gap = int(max_gap)

  def sample(self, rng: np.random.Generator) -> PairSpec:
    """One pair: dataset by ratio, accepted sequence, template and search frames."""
    pool = (
        self.pools[int(rng.choice(len(self.pools), p=self.probs))]
        if len(self.pools) > 1
        else self.pools[0]
    )
    index, seq = pool.draw(rng)
    template, search = sample_frame_ids(
        rng, seq.visible, pool.usable_frames(index, seq), self.max_gap
    )
    return PairSpec(pool.name, index, seq, template, search)
