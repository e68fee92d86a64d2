"""Where training sequences and their frame bytes come from: the raw layouts or TFDS.

`load_pools(config, process_index, process_count)` reads every dataset in
`config.data.train_datasets` (comma list) and returns this process's
`DatasetPool`s plus, per dataset, a function `path -> encoded frame bytes`.

* `config.data.source == 'raw'` (default): the readers of
  `input_pipeline.readers` on `config.data.roots.<name>`; this process keeps
  every `process_count`-th sequence.
* `config.data.source == 'tfds'`: the TFDS builders of
  `input_pipeline.tfds_builders` (`<name>_cost` datasets) in
  `config.data.tfds_data_dir`, prepared from `config.data.roots.<name>` as the
  manual dir if not prepared yet; this process reads its
  `tfds.even_splits` part.

Before reading anything every root is checked, and all missing ones are
reported in one error naming the flags to set.
"""

from __future__ import annotations

import logging
import os

from cost_jax import errors
from input_pipeline.readers import DATASETS, load_dataset
from input_pipeline.sampler import DatasetPool, shard_indices
from input_pipeline.sequence import ROOT_FLAG

__all__ = [
    'MissingRootsError',
    'train_dataset_names',
    'check_roots',
    'check_sources',
    'load_pools',
    'read_file',
    'TRAIN_SPLITS',
]

# The split each reader trains on (GOT-10k: TransT's 'vottrain' is not a reader split).
TRAIN_SPLITS = {
    'vlsot500': 'test',
    'vlsot230': 'test',
    'vlsot270': 'test',
    'synthetic': 'all',
    'lasot_ext': 'test',
}
SOURCES = ('raw', 'tfds')


class MissingRootsError(errors.NotFound):
  """One or more dataset roots are not set or do not exist."""

  def __init__(self, missing: dict[str, str]):
    found = ', '.join(
        f'{name} {repr(root) + " (not found)" if root else "(not set)"}'
        for name, root in missing.items()
    )
    flags = ' '.join(f'{ROOT_FLAG.format(name=name)}=DIR' for name in missing)
    super().__init__(
        f'training dataset root(s) missing: {found}',
        f'set each to the folder that holds the dataset: {flags}',
    )
    self.missing = dict(missing)


def _get(config_dict, key, default):
  """`config_dict.key` if present, else `default` (for optional config fields)."""
  try:
    return config_dict[key] if key in config_dict else default
  except TypeError:
    return default


def train_dataset_names(config) -> list[str]:
  """The comma list `config.data.train_datasets`, validated against the readers."""
  names = [
      n.strip() for n in str(config.data.train_datasets).split(',') if n.strip()
  ]
  if not names:
    raise ValueError(
        'config.data.train_datasets is empty: name at least one dataset, '
        f'e.g. --config.data.train_datasets=synthetic (known: {", ".join(DATASETS)})'
    )
  unknown = [n for n in names if n not in DATASETS]
  if unknown:
    raise ValueError(
        f'unknown training dataset(s) {unknown} in config.data.train_datasets; '
        f'known: {", ".join(DATASETS)}'
    )
  return names


def _root(config, name: str) -> str:
  return os.path.expanduser(str(_get(config.data.roots, name, '') or ''))


def check_roots(
    config, names: list[str], optional: frozenset = frozenset()
) -> None:
  """Raises `MissingRootsError` listing every dataset in `names` whose root is missing.

  Datasets in `optional` may have an empty root (TFDS datasets already prepared).
  """
  missing = {}
  for name in names:
    root = _root(config, name)
    if not os.path.isdir(root) and not (name in optional and not root):
      missing[name] = root
  if missing:
    raise MissingRootsError(missing)


def read_file(path: str) -> bytes:
  """The bytes of a frame file (raw layouts)."""
  with open(path, 'rb') as f:
    return f.read()


def _split(config, name: str) -> str:
  splits = _get(config.data, 'splits', None)
  split = _get(splits, name, '') if splits is not None else ''
  return split or TRAIN_SPLITS.get(name, 'train')


def _log_invalid(name: str, sequences) -> None:
  """Logs how many boxes the reader found invalid (they are never sampled)."""
  if not isinstance(sequences, list):
    return
  totals: dict[str, int] = {}
  for seq in sequences:
    for reason, count in seq.extra.get('invalid_boxes', {}).items():
      totals[reason] = totals.get(reason, 0) + count
  if totals:
    logging.warning(
        '%s: skipping frames with invalid boxes (never sampled): %s',
        name,
        ', '.join(f'{k}: {v}' for k, v in sorted(totals.items())),
    )


def _raw_pool(config, name, process_index, process_count):
  sequences = load_dataset(name, _root(config, name), _split(config, name))
  _log_invalid(name, sequences)
  indices = shard_indices(len(sequences), process_index, process_count, name)
  return (
      DatasetPool(
          name, sequences, _get(config.data.ratios, name, 1.0), indices
      ),
      read_file,
  )


def _tfds_pool(config, name, process_index, process_count):
  # Lazy: TFDS and TensorFlow (heavy) only for config.data.source='tfds'.
  from input_pipeline.tfds_builders import reader  # pylint: disable=g-import-not-at-top

  sequences, frames = reader.load_sequences(
      name,
      data_dir=str(_get(config.data, 'tfds_data_dir', '') or '') or None,
      manual_dir=_root(config, name) or None,
      process_index=process_index,
      process_count=process_count,
  )
  _log_invalid(name, sequences)
  return (
      DatasetPool(name, sequences, _get(config.data.ratios, name, 1.0)),
      frames.read,
  )


def check_sources(config) -> list[str]:
  """Checks config.data.source and every training root (one error listing all
  missing roots); returns the training dataset names. Cheap: reads no data."""
  source = str(_get(config.data, 'source', 'raw'))
  if source not in SOURCES:
    raise ValueError(
        f'config.data.source must be one of {SOURCES}, got {source!r}'
    )
  names = train_dataset_names(config)
  if source == 'raw':
    check_roots(config, names)
  else:
    # Lazy: TFDS and TensorFlow (heavy) only for config.data.source='tfds'.
    from input_pipeline.tfds_builders import reader  # pylint: disable=g-import-not-at-top

    check_roots(
        config,
        names,
        optional=frozenset(
            reader.prepared(
                names, str(_get(config.data, 'tfds_data_dir', '') or '') or None
            )
        ),
    )
  return names


def load_pools(config, process_index: int = 0, process_count: int = 1):
  """(pools, {dataset: read(path) -> bytes}) for this process (see the module doc)."""
  names = check_sources(config)
  source = str(_get(config.data, 'source', 'raw'))
  make = _raw_pool if source == 'raw' else _tfds_pool
  pools, readers = [], {}
  for name in names:
    pool, read = make(config, name, process_index, process_count)
    logging.info(
        '%s (%s): %d usable sequences for process %d/%d',
        name,
        source,
        len(pool),
        process_index,
        process_count,
    )
    pools.append(pool)
    readers[name] = read
  return pools, readers
