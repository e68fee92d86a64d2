"""Dataset readers: one module per dataset family, one registry.

    from input_pipeline.readers import load_dataset
    sequences = load_dataset('lasot', '/data/LaSOT', split='test')

Every reader returns `input_pipeline.sequence.Sequence` objects with the
conventions documented there.  A missing root raises `DatasetRootError` (a
`FileNotFoundError` and a `ReadError`) naming `--config.data.roots.<name>`;
a malformed annotation file raises `ReadError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

from cost_jax.errors import InvalidValue
from input_pipeline.readers import (
    coco,
    got10k,
    lasot,
    otb_lang,
    tnl2k,
    trackingnet,
    vlsot,
    webuav,
)
from input_pipeline.readers.textfiles import read_box_file, read_flags, read_table
from input_pipeline.sequence import DatasetRootError, ReadError, Sequence

__all__ = [
    'DATASETS',
    'DatasetInfo',
    'load_dataset',
    'read_box_file',
    'read_flags',
    'read_table',
    'ReadError',
    'DatasetRootError',
    'Sequence',
]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """A registered dataset: its loader `(root, split) -> sequences` and its splits."""

  loader: Callable
  splits: tuple[str, ...]
  description: str


DATASETS: dict[str, DatasetInfo] = {
    'lasot': DatasetInfo(
        functools.partial(lasot.load, dataset='lasot'),
        ('train', 'test', 'all'),
        'LaSOT, protocol II (1,120 train / 280 test)',
    ),
    'lasot_ext': DatasetInfo(
        functools.partial(lasot.load, dataset='lasot_ext'),
        ('test', 'all'),
        'LaSOT extension subset (150 test videos)',
    ),
    'got10k': DatasetInfo(
        got10k.load, got10k.SPLITS, 'GOT-10k (pseudo-language from meta_info)'
    ),
    'trackingnet': DatasetInfo(
        trackingnet.load,
        ('train', 'test', 'all', 'TRAIN_<k>'),
        'TrackingNet (class name as language)',
    ),
    'coco': DatasetInfo(
        coco.load, coco.SPLITS, 'COCO instances as 1-frame sequences'
    ),
    'tnl2k': DatasetInfo(tnl2k.load, ('train', 'test', 'all'), 'TNL2K'),
    'otb99_lang': DatasetInfo(
        otb_lang.load, ('train', 'test', 'all'), 'OTB99-Lang'
    ),
    'webuav3m': DatasetInfo(webuav.load, webuav.SPLITS + ('all',), 'WebUAV-3M'),
    'vlsot500': DatasetInfo(
        functools.partial(vlsot.load, dataset='vlsot500'),
        ('test',),
        'VL-SOT500 = VL-SOT230 + VL-SOT270 (test only)',
    ),
    'vlsot230': DatasetInfo(
        functools.partial(vlsot.load, dataset='vlsot230'),
        ('test',),
        'VL-SOT230, generic small objects',
    ),
    'vlsot270': DatasetInfo(
        functools.partial(vlsot.load, dataset='vlsot270'),
        ('test',),
        'VL-SOT270, high-speed small objects',
    ),
    'synthetic': DatasetInfo(
        functools.partial(vlsot.load, dataset='synthetic'),
        ('all',),
        'synthetic VL small-object set (VL-SOT500 layout); '
        'the split is the output folder',
    ),
}


def load_dataset(name: str, root: str, split: str = 'test') -> list[Sequence]:
  """Reads dataset `name` (a key of `DATASETS`) from `root`.

  Datasets without split definitions (VL-SOT500 and its subsets, the
  synthetic set) ignore `split`.  COCO returns a lazy list-like.
  """
  if name not in DATASETS:
    raise InvalidValue(
        f'unknown dataset {name!r}', f'use one of {", ".join(sorted(DATASETS))}'
    )
  return DATASETS[name].loader(root, split)
