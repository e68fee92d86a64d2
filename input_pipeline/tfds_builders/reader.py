"""Reading the `*_cost` TFDS datasets back as `Sequence`s for the pair pipeline.

`load_sequences(name, ...)` prepares the TFDS dataset of training dataset
`name` if needed (from `manual_dir`), reads this process's part
(`tfds.even_splits`) once, and returns sequences whose `frames` are keys into
an in-memory store of the encoded JPEG bytes.  Memory use is the encoded size
of this process's videos (the synthetic demo set: tens of MB); for big
datasets prefer `config.data.source='raw'`.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline.sequence import ROOT_FLAG, Sequence

__all__ = ['BUILDERS', 'MemoryFrames', 'builder', 'prepared', 'load_sequences']

# Training dataset name -> (TFDS name, split used for training).
BUILDERS = {
    'synthetic': ('synthetic_vlsot_cost', 'train'),
    'vlsot500': ('vlsot500_cost', 'test'),
}


class MemoryFrames:
  """Encoded frames keyed by `tfds://<dataset>/<split>/<video>/<index>`."""

  def __init__(self):
    self.data: dict[str, bytes] = {}

  def add(self, key: str, data: bytes) -> str:
    self.data[key] = data
    return key

  def read(self, key: str) -> bytes:
    try:
      return self.data[key]
    except KeyError:
      raise FileNotFoundError(
          2, 'no such frame in the TFDS store', key
      ) from None


def _tfds_name(name: str) -> tuple[str, str]:
  if name not in BUILDERS:
    raise ValueError(
        f'no TFDS builder for training dataset {name!r} (TFDS builders: '
        f'{", ".join(BUILDERS)}); use --config.data.source=raw for it'
    )
  return BUILDERS[name]


def builder(name: str, data_dir: str | None = None):
  """The TFDS builder of training dataset `name` (this package registers
  ours when it is imported)."""
  return tfds.builder(_tfds_name(name)[0], data_dir=data_dir)


def prepared(names, data_dir: str | None = None) -> list[str]:
  """The names among `names` whose TFDS dataset is already prepared in `data_dir`."""
  out = []
  for name in names:
    if name in BUILDERS and builder(name, data_dir).is_prepared():
      out.append(name)
  return out


def _prepare(b, manual_dir: str | None, name: str):
  if b.is_prepared():
    return
  if not manual_dir:
    raise FileNotFoundError(
        f'TFDS dataset {b.name} is not prepared in {b.data_dir} and no '
        f'manual dir is given: set {ROOT_FLAG.format(name=name)}=DIR to '
        f'the raw {name} folder to prepare it from'
    )
  logging.info('Preparing TFDS dataset %s from %s', b.name, manual_dir)
  b.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
  )


def _process_split(
    b, split: str, process_index: int, process_count: int
) -> str:
  """This process's part of `split`; all of it if it has fewer videos than processes."""
  if process_count == 1:
    return split
  if b.info.splits[split].num_examples < process_count:
    logging.warning(
        '%s/%s: %d videos for %d processes; every process reads all of them.',
        b.name,
        split,
        b.info.splits[split].num_examples,
        process_count,
    )
    return split
  return tfds.even_splits(split, process_count)[process_index]


def _sequence(example: dict, name: str, prefix: str, frames: MemoryFrames):
  video = example['name'].decode()
  keys = [
      frames.add(f'{prefix}/{video}/{i:06d}', bytes(data))
      for i, data in enumerate(example['frames'])
  ]
  return Sequence(
      name=video,
      dataset=name,
      frames=keys,
      boxes=example['boxes'].astype(np.float64),
      visible=example['visible'],
      language=example['language'].decode(),
      attributes={},
      extra={
          'absent': example['absent'],
          'absent_labels': True,
          'raw_boxes': example['raw_boxes'].astype(np.float64),
          'subset': example['subset'].decode(),
      },
  )


def load_sequences(
    name: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    process_index: int = 0,
    process_count: int = 1,
    split: str | None = None,
):
  """(sequences, MemoryFrames) of this process's part of TFDS dataset `name`."""
  tfds_name, default_split = _tfds_name(name)
  b = builder(name, data_dir)
  _prepare(b, manual_dir, name)
  split = split or default_split
  part = _process_split(b, split, process_index, process_count)
  ds = b.as_dataset(
      split=part,
      shuffle_files=False,
      decoders={'frames': tfds.decode.SkipDecoding()},
  )
  frames = MemoryFrames()
  prefix = f'tfds://{tfds_name}/{split}'
  sequences = [_sequence(ex, name, prefix, frames) for ex in tfds.as_numpy(ds)]
  # TFDS stores examples in key-hash order; sort as the raw reader lists them.
  sequences.sort(key=lambda s: (s.extra['subset'], s.name))
  return sequences, frames
