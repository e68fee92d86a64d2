"""The training input pipeline: a tf.data stream of cropped template/search pairs.

    it = make_train_iterator(config, process_index, process_count, start_step)
    batch = next(it)  # numpy dict of the local batch (global batch // process_count)

Keys and shapes (B = local batch, Tz / Sx = config.model.template_size / search_size,
T = config.text.max_len):

    template     uint8   (B, Tz, Tz, 3)  RGB, 2x context around the target
    search       uint8   (B, Sx, Sx, 3)  RGB, 4x context around the jittered target
    search_box   float32 (B, 4)          (cx, cy, w, h) in search-crop pixels / Sx; zeros if absent
    visible      bool    (B,)            False: the target is absent from the search frame
    text_ids     int32   (B, T)          WordPiece ids of the description
    text_mask    int32   (B, T)

Sampling, crops and augmentation are TransT's (`sampler`, `augment`,
`cost_jax.crops`).  Example k of process p is a pure function of
(config.seed, p, k); batch s holds examples s*B ... s*B + B-1.
`tf.data.Dataset.range(start_step, ...)` maps each step to its batch (numpy +
cv2 in parallel threads, in order), so a run resumed at `start_step` (the
number of batches already consumed) sees the same batches as an uninterrupted
one, given the same data, process count and batch size.

Unreadable frames are logged with their path and skipped (the example is
redrawn with the next attempt seed); the pipeline stops with `BadDataError`
once more than `config.data.max_bad_fraction` of the reads failed.  Errors
raised while making an example surface as themselves, not as TF errors.
"""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np

from cost_jax.text import Tokenizer, resolve_text_path
from input_pipeline import augment, sources
from input_pipeline.sampler import PairSampler, PairSpec, nearest_visible

__all__ = [
    'make_train_iterator',
    'PairMaker',
    'PairIterator',
    'FrameAccounting',
    'BadDataError',
    'save_batch_grid',
    'KEYS',
]

KEYS = ('template', 'search', 'search_box', 'visible', 'text_ids', 'text_mask')
MAX_ATTEMPTS = 20  # Redraws of one example after unreadable frames.
MIN_READS = 500  # Floor of the denominator of the bad-frame fraction.


class BadDataError(RuntimeError):
  """Too many unreadable frames."""


class FrameAccounting:
  """Thread-safe counts of frame reads and failures; stops on too many failures.

  Stops when bad > max_bad_fraction * max(reads, MIN_READS): a few bad frames
  early in a run do not stop it, a dataset of broken files stops it quickly.
  """

  def __init__(self, max_bad_fraction: float, min_reads: int = MIN_READS):
    self.max_bad_fraction = float(max_bad_fraction)
    self.min_reads = int(min_reads)
    self.reads = 0
    self.bad = 0
    self.bad_paths: dict[str, str] = {}
    self.fatal: BaseException | None = None
    self._lock = threading.Lock()

  def ok(self) -> None:
    with self._lock:
      self.reads += 1

  def failed(self, path: str, reason: str) -> None:
    """Counts a failed read; raises `BadDataError` past the allowed fraction."""
    with self._lock:
      self.reads += 1
      self.bad += 1
      first = path not in self.bad_paths
      self.bad_paths.setdefault(path, reason)
      bad, reads = self.bad, self.reads
    if first:
      logging.warning(
          'Unreadable frame skipped: %s (%s); %d of %d frame reads failed so far.',
          path,
          reason,
          bad,
          reads,
      )
    if bad > self.max_bad_fraction * max(reads, self.min_reads):
      shown = '\n'.join(
          f'  {p}: {r}' for p, r in list(self.bad_paths.items())[:10]
      )
      raise BadDataError(
          f'{bad} of {reads} frame reads failed ({len(self.bad_paths)} distinct files), more '
          f'than config.data.max_bad_fraction={self.max_bad_fraction} allows. Fix or remove '
          f'the files, or raise --config.data.max_bad_fraction. First failures:\n{shown}'
      )

  def stats(self) -> dict:
    with self._lock:
      return {
          'frame_reads': self.reads,
          'bad_frames': self.bad,
          'bad_files': len(self.bad_paths),
      }


class PairMaker:
  """Example index -> one example dict (numpy), deterministic in (seed, process, index)."""

  def __init__(
      self,
      sampler: PairSampler,
      readers: dict,
      params: augment.PairParams,
      tokenizer,
      seed: int = 0,
      process_index: int = 0,
      accounting: FrameAccounting | None = None,
  ):
    self.sampler = sampler
    self.readers = readers
    self.params = params
    self.tokenizer = tokenizer
    self.seed = int(seed) % (1 << 63)
    self.process_index = int(process_index)
    self.accounting = accounting or FrameAccounting(0.01)
    self._text: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

  def rng(self, index: int, attempt: int = 0) -> np.random.Generator:
    return np.random.default_rng(
        [self.seed, self.process_index, int(index), attempt]
    )

  def sample(self, index: int, attempt: int = 0) -> PairSpec:
    """The pair drawn for `index` (before reading frames); for tests and tools."""
    return self.sampler.sample(self.rng(index, attempt))

  def __call__(self, index) -> dict:
    """The example for global example `index` of this process."""
    try:
      return self._make(int(index))
    except (
        BaseException
    ) as e:  # Kept so PairIterator re-raises it instead of a TF error.
      if self.accounting.fatal is None:
        self.accounting.fatal = e
      raise

  def batch(self, step, batch_size: int) -> tuple:
    """Examples step*batch_size ... + batch_size - 1, stacked, as a tuple in `KEYS` order."""
    first = int(step) * int(batch_size)
    examples = [self(first + j) for j in range(int(batch_size))]
    return tuple(np.stack([e[k] for e in examples]) for k in KEYS)

  def _make(self, index: int) -> dict:
    for attempt in range(MAX_ATTEMPTS):
      rng = self.rng(index, attempt)
      spec = self.sampler.sample(rng)
      try:
        template_frame, search_frame = self._frames(spec)
      except augment.FrameError as e:
        self.accounting.failed(e.path, e.reason)
        continue
      return self._process(rng, spec, template_frame, search_frame)
    raise BadDataError(
        f'example {index}: {MAX_ATTEMPTS} draws in a row hit unreadable '
        f'frames; see the warnings above for their paths'
    )

  def _read(self, dataset: str, path: str) -> np.ndarray:
    try:
      data = self.readers[dataset](path)
    except OSError as e:
      raise augment.FrameError(path, e.strerror or str(e)) from None
    image = augment.decode_frame(data, path)
    self.accounting.ok()
    return image

  def _frames(self, spec: PairSpec):
    frames = spec.sequence.frames
    template = self._read(spec.dataset, frames[spec.template])
    if spec.search == spec.template:
      return template, template
    return template, self._read(spec.dataset, frames[spec.search])

  def _process(self, rng, spec: PairSpec, template_frame, search_frame) -> dict:
    seq = spec.sequence
    visible = spec.search_visible
    search_box = seq.boxes[
        spec.search if visible else nearest_visible(seq.visible, spec.search)
    ]
    example = augment.process_pair(
        rng,
        template_frame,
        seq.boxes[spec.template],
        search_frame,
        search_box,
        visible,
        self.params,
    )
    example['text_ids'], example['text_mask'] = self._tokens(spec)
    return example

  def _tokens(self, spec: PairSpec):
    key = (spec.dataset, spec.index)
    tokens = self._text.get(key)
    if tokens is None:
      tokens = self.tokenizer.encode(spec.sequence.language, spec.sequence.name)
      self._text[key] = tokens
    return tokens


class PairIterator:
  """Iterator of numpy batch dicts; re-raises errors from the example maker as themselves."""

  def __init__(self, dataset, accounting: FrameAccounting):
    import tensorflow as tf  # Lazy: TensorFlow (heavy) only for the stream.

    self.dataset = dataset
    self.accounting = accounting
    self._tf_error = tf.errors.OpError
    self._it = iter(dataset.as_numpy_iterator())

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    try:
      return next(self._it)
    except self._tf_error as e:
      if self.accounting.fatal is not None:
        raise self.accounting.fatal from None
      raise RuntimeError(f'input pipeline failed: {e.message}') from e

  def stats(self) -> dict:
    """Frame reads and failures so far."""
    return self.accounting.stats()


def _resolve_process(process_index, process_count) -> tuple[int, int]:
  index = 0 if process_index is None else int(process_index)
  count = 1 if process_count is None else int(process_count)
  if not 0 <= index < count:
    raise ValueError(f'process_index {index} not in [0, process_count={count})')
  return index, count


def local_batch_size(global_batch: int, process_count: int) -> int:
  if global_batch % process_count:
    raise ValueError(
        f'config.train.batch_size={global_batch} is not divisible by the '
        f'{process_count} processes'
    )
  return global_batch // process_count


def make_pair_maker(
    config, process_index: int = 0, process_count: int = 1
) -> PairMaker:
  """The numpy part of the pipeline (sampling, decode, crops, text) for this process."""
  pools, readers = sources.load_pools(config, process_index, process_count)
  sampler = PairSampler(pools, max_gap=int(config.data.max_gap))
  tokenizer = Tokenizer(
      resolve_text_path(config.text.path), int(config.text.max_len)
  )
  return PairMaker(
      sampler,
      readers,
      augment.PairParams.from_config(config),
      tokenizer,
      seed=config.seed,
      process_index=process_index,
      accounting=FrameAccounting(config.data.max_bad_fraction),
  )


def build_dataset(maker: PairMaker, batch_size: int, start_step: int = 0):
  """tf.data: range(start_step, ...) -> parallel ordered map(maker.batch) -> prefetch.

  One numpy_function call makes a whole batch: the per-call cost of
  numpy_function is then paid once per batch, not once per pair (on small
  frames it was a third of the work).  Batches are made in parallel threads
  (cv2 decodes and resizes without the GIL) and come out in order.
  """
  import tensorflow as tf  # Lazy: TensorFlow (heavy) only for the stream.

  try:  # JAX owns the accelerators; tf.data needs none.
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:  # TF already initialised its devices.
    pass
  p, t = maker.params, maker.tokenizer.max_len
  specs = {
      'template': (tf.uint8, (p.template_size, p.template_size, 3)),
      'search': (tf.uint8, (p.search_size, p.search_size, 3)),
      'search_box': (tf.float32, (4,)),
      'visible': (tf.bool, ()),
      'text_ids': (tf.int32, (t,)),
      'text_mask': (tf.int32, (t,)),
  }

  def make(step):
    values = tf.numpy_function(
        lambda s: maker.batch(s, batch_size),
        [step],
        [specs[k][0] for k in KEYS],
        name='make_pairs',
    )
    for value, key in zip(values, KEYS):
      value.set_shape((batch_size,) + specs[key][1])
    return dict(zip(KEYS, values))

  ds = tf.data.Dataset.range(int(start_step), np.iinfo(np.int64).max)
  ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_optimization.inject_prefetch = False
  return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def make_train_iterator(
    config, process_index=None, process_count=None, start_step: int = 0
) -> PairIterator:
  """This process's iterator of training batches (see the module doc).

  `process_index` / `process_count` default to 0 / 1 (pass
  `jax.process_index()` / `jax.process_count()`); batch `start_step` is the
  first one returned.
  """
  index, count = _resolve_process(process_index, process_count)
  batch = local_batch_size(int(config.train.batch_size), count)
  maker = make_pair_maker(config, index, count)
  dataset = build_dataset(maker, batch, int(start_step))
  return PairIterator(dataset, maker.accounting)


def save_batch_grid(
    batch: dict, path: str, max_examples: int = 16
) -> np.ndarray:
  """Writes a PNG: one row per example, template | search with its box (green; red
  border and 'absent' when not visible).  Returns the RGB grid."""
  search = np.asarray(batch['search'])
  template = np.asarray(batch['template'])
  n, side = min(len(search), max_examples), search.shape[1]
  rows = []
  for i in range(n):
    canvas = np.zeros((side, template.shape[2] + side, 3), np.uint8)
    canvas[: template.shape[1], : template.shape[2]] = template[i]
    view = np.array(search[i])  # a writable copy
    if bool(batch['visible'][i]):
      cx, cy, w, h = np.asarray(batch['search_box'][i], np.float64) * side
      cv2.rectangle(
          view,
          (int(round(cx - w / 2)), int(round(cy - h / 2))),
          (int(round(cx + w / 2)), int(round(cy + h / 2))),
          (0, 255, 0),
          1,
      )
    else:
      cv2.rectangle(view, (0, 0), (side - 1, side - 1), (255, 0, 0), 3)
      cv2.putText(
          view, 'absent', (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 0, 0), 2
      )
    canvas[:, template.shape[2] :] = view
    rows.append(canvas)
  grid = np.concatenate(rows, axis=0) if rows else np.zeros((1, 1, 3), np.uint8)
  if not cv2.imwrite(path, np.ascontiguousarray(grid[..., ::-1])):
    raise OSError(f'cannot write {path}')
  return grid
