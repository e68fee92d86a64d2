"""Matches a torch state_dict against our variables and reports by name."""

import dataclasses
import re
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from cost_jax import errors
from cost_jax.convert import names

_SHOWN = 25  # Names listed per category before "... and N more".


class ConversionError(errors.UserError, ValueError):
  """Missing, unexpected or mis-shaped tensors; nothing was written."""


WRONG_VARIANT_FIX = (
    'give the --config variant the file was made for, or '
    '--allow_missing=REGEX for tensors to leave to the '
    'initialisation'
)


def listing(title, items):
  if not items:
    return ''
  shown = ''.join(f'\n    {item}' for item in items[:_SHOWN])
  more = (
      f'\n    ... and {len(items) - _SHOWN} more' if len(items) > _SHOWN else ''
  )
  return f'\n  {len(items)} {title}:{shown}{more}'


@dataclasses.dataclass
class Report:
  """What a conversion found; `check()` raises unless it is complete."""

  source: str
  missing: List[str] = dataclasses.field(default_factory=list)
  unexpected: List[str] = dataclasses.field(default_factory=list)
  misshaped: List[str] = dataclasses.field(default_factory=list)
  ignored: List[str] = dataclasses.field(default_factory=list)
  left_to_init: List[str] = dataclasses.field(default_factory=list)  # paths

  def text(self):
    return (
        listing('missing tensors (expected, not in the file)', self.missing)
        + listing(
            'unexpected tensors (in the file, not in the model)',
            self.unexpected,
        )
        + listing('mis-shaped tensors', self.misshaped)
        + listing(
            'tensors left to the initialisation (--allow_missing)',
            self.left_to_init,
        )
    )

  def check(self, fix=WRONG_VARIANT_FIX, outcome='nothing was written'):
    if self.missing or self.unexpected or self.misshaped:
      raise ConversionError(
          f'{self.source} does not match the target model; {outcome}.'
          f'{self.text()}',
          fix,
      )


def match(
    state: Dict[str, np.ndarray],
    entries: Dict[str, names.Entry],
    source: str,
    ignore: Optional[Callable[[str], bool]] = None,
    allow_missing: str = '',
) -> Tuple[Dict[str, np.ndarray], Report]:
  """torch-named `state` -> {JAX path: array} for the `entries` it covers.

  `ignore(key)` marks source keys that are deliberately dropped (reported as
  ignored, not unexpected). Missing entries whose torch key or JAX path
  matches the `allow_missing` regular expression are left to the
  initialisation instead of failing.
  """
  report = Report(source)
  allowed = re.compile(allow_missing) if allow_missing else None
  out = {}
  for key, entry in entries.items():
    if key not in state:
      if allowed and (allowed.search(key) or allowed.search(entry.path)):
        report.left_to_init.append(entry.path)
      else:
        report.missing.append(
            f'{key} {list(entry.torch_shape)} ' f'({entry.path})'
        )
      continue
    value = np.asarray(state[key])
    if tuple(value.shape) != entry.torch_shape:
      report.misshaped.append(
          f'{key}: file {list(value.shape)}, model {list(entry.torch_shape)} '
          f'({entry.path})'
      )
      continue
    out[entry.path] = names.to_jax(entry.kind, value).astype(
        np.float32, copy=False
    )
  for key in state:
    if key in entries or names.is_ignored(key):
      continue
    if ignore is not None and ignore(key):
      report.ignored.append(key)
    else:
      report.unexpected.append(f'{key} {list(np.shape(state[key]))}')
  return out, report


def export(flat: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """{JAX path: array} -> a torch state_dict {key: array} (+ BN counters)."""
  out = {}
  for path, value in flat.items():
    value = np.asarray(value, np.float32)
    entry = names.entry_for(path, value.shape)
    out[entry.key] = names.to_torch(entry.kind, value)
  out.update(names.batchnorm_counters(list(out)))
  return out
