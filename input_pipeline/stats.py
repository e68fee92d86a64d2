"""Dataset statistics: the columns of the COST paper's Table 1 and the §3 small-object test.

    python -m input_pipeline.stats --dataset vlsot500 --root /data/VL-SOT500 --json stats.json

Definitions (paper §3):

* size s_t = sqrt(w_t h_t); a video's average size is the mean over its visible
  frames, a dataset's the mean over videos.
* relative speed, Eq. (1): Δ_t = ||p_t − p_{t−1}|| / (sqrt(s_{t−1} s_t) (T_t − T_{t−1})),
  p_t the box centre, unit frame spacing by default; frames whose target (or
  previous target) is absent have no Δ_t.  Video = mean over frames, dataset =
  mean over videos.
* small object: average relative size < 1% and average absolute size < 22 px.
  Relative size is the side ratio sqrt(wh)/sqrt(WH) by default (`--relative_size
  area` uses wh/(WH)); the paper does not say which.
"""

from __future__ import annotations

import json
import sys

from absl import flags
import numpy as np

from cost_jax import cli
from cost_jax import errors
from input_pipeline.readers import DATASETS, load_dataset

__all__ = [
    'relative_speed',
    'box_sizes',
    'sequence_stats',
    'dataset_stats',
    'format_table',
    'main',
]

SMALL_RELATIVE = 0.01
SMALL_ABSOLUTE = 22.0


def _valid(boxes: np.ndarray) -> np.ndarray:
  with np.errstate(invalid='ignore'):
    return np.all(np.isfinite(boxes), 1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def box_sizes(boxes: np.ndarray) -> np.ndarray:
  """sqrt(w*h) per row; NaN for absent or invalid boxes."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  out = np.full(boxes.shape[0], np.nan)
  ok = _valid(boxes)
  out[ok] = np.sqrt(boxes[ok, 2] * boxes[ok, 3])
  return out


def relative_speed(
    boxes: np.ndarray,
    visible: np.ndarray | None = None,
    timestamps: np.ndarray | None = None,
    per_frame: bool = False,
):
  """The video's average relative speed by Eq. (1) (NaN if no two consecutive valid frames).

  `visible` (optional) masks out frames on top of invalid / NaN boxes;
  `timestamps` defaults to the frame index.  With `per_frame=True` returns the
  (N,) array of Δ_t, NaN where undefined (always at t = 0).
  """
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  ok = (
      _valid(boxes)
      if visible is None
      else _valid(boxes) & np.asarray(visible, bool)
  )
  times = (
      np.arange(boxes.shape[0], dtype=np.float64)
      if timestamps is None
      else np.asarray(timestamps, np.float64)
  )
  centres = boxes[:, :2] + boxes[:, 2:] / 2
  sizes = np.sqrt(np.abs(boxes[:, 2] * boxes[:, 3]))
  delta = np.full(boxes.shape[0], np.nan)
  pair = ok[1:] & ok[:-1]
  dist = np.linalg.norm(centres[1:] - centres[:-1], axis=1)
  with np.errstate(invalid='ignore', divide='ignore'):
    step = dist / (np.sqrt(sizes[1:] * sizes[:-1]) * (times[1:] - times[:-1]))
  delta[1:][pair] = step[pair]
  if per_frame:
    return delta
  return float(np.mean(delta[1:][pair])) if pair.any() else float('nan')


def sequence_stats(seq, relative_size: str = 'side') -> dict:
  """Per-video numbers: frames, average size / relative size / relative speed, small-object test."""
  boxes = np.where(seq.visible[:, None], seq.boxes, np.nan)
  sizes = box_sizes(boxes)
  width, height = seq.image_size or (np.nan, np.nan)
  avg_size = (
      float(np.nanmean(sizes)) if np.isfinite(sizes).any() else float('nan')
  )
  if relative_size == 'side':
    rel = avg_size / np.sqrt(width * height)
  elif relative_size == 'area':
    rel = (
        float(np.nanmean(sizes**2)) / (width * height)
        if np.isfinite(avg_size)
        else np.nan
    )
  else:
    raise ValueError(
        f'relative_size must be side or area, got {relative_size!r}'
    )
  out = {
      'name': seq.name,
      'frames': len(seq),
      'image_size': seq.image_size,
      'absent_frames': int(np.sum(~seq.visible)),
      'average_size': avg_size,
      'relative_size': float(rel),
      'relative_speed': relative_speed(boxes),
      'small': bool(rel < SMALL_RELATIVE and avg_size < SMALL_ABSOLUTE),
  }
  if 'relative_speed' in seq.extra:
    out['relative_speed_file'] = float(seq.extra['relative_speed'])
  return out


def _nanmean(values) -> float:
  values = np.asarray(list(values), np.float64)
  return (
      float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')
  )


def dataset_stats(sequences, relative_size: str = 'side') -> dict:
  """Table 1 columns, per-attribute video counts and the per-video small-object test."""
  per_video = [sequence_stats(s, relative_size) for s in sequences]
  frames = np.array([v['frames'] for v in per_video] or [0])
  classes = {s.object_class for s in sequences if s.object_class}
  counts: dict[str, int] = {}
  num_attributes = 0
  for s in sequences:
    num_attributes = max(
        num_attributes,
        len(s.extra.get('attribute_values', ())) or len(s.attributes),
    )
    for name, on in s.attributes.items():
      counts[name] = counts.get(name, 0) + int(bool(on))
  return {
      'videos': len(per_video),
      'classes': len(classes) or None,
      'attributes': num_attributes,
      'min_frames': int(frames.min()),
      'mean_frames': float(frames.mean()),
      'max_frames': int(frames.max()),
      'total_frames': int(frames.sum()),
      'average_size': _nanmean(v['average_size'] for v in per_video),
      'average_relative_speed': _nanmean(
          v['relative_speed'] for v in per_video
      ),
      'absent_labels': any(
          s.extra.get('absent_labels', False) for s in sequences
      ),
      'language': any(bool(s.language) for s in sequences),
      'small_videos': sum(v['small'] for v in per_video),
      'relative_size_mode': relative_size,
      'attribute_counts': dict(sorted(counts.items())),
      'per_video': per_video,
  }


def _fmt(value) -> str:
  if isinstance(value, bool):
    return 'yes' if value else 'no'
  if value is None:
    return '-'
  if isinstance(value, float):
    return 'nan' if not np.isfinite(value) else f'{value:.3f}'
  return str(value)


def format_table(name: str, stats: dict, max_rows: int = 50) -> str:
  """Human-readable Table 1 row, attribute counts and per-video rows."""
  cols = [
      ('Dataset', name),
      ('Videos', stats['videos']),
      ('Classes', stats['classes']),
      ('Attributes', stats['attributes']),
      ('Min frame', stats['min_frames']),
      ('Mean frame', round(stats['mean_frames'], 1)),
      ('Max frame', stats['max_frames']),
      ('Total frames', stats['total_frames']),
      ('Average size', stats['average_size']),
      ('Average relative speed', stats['average_relative_speed']),
      ('Absent labels', stats['absent_labels']),
      ('Language', stats['language']),
  ]
  widths = [max(len(h), len(_fmt(v))) for h, v in cols]
  lines = [
      '  '.join(h.ljust(w) for (h, _), w in zip(cols, widths)),
      '  '.join(_fmt(v).ljust(w) for (_, v), w in zip(cols, widths)),
      '',
  ]
  if stats['attribute_counts']:
    lines.append(
        'Videos per attribute: '
        + ', '.join(f'{k}={v}' for k, v in stats['attribute_counts'].items())
    )
  lines.append(
      f"Small-object test (relative size < {SMALL_RELATIVE:.0%} ({stats['relative_size_mode']}) "
      f"and size < {SMALL_ABSOLUTE:g} px): {stats['small_videos']}/{stats['videos']} videos"
  )
  lines.append(
      f"{'video':<28} {'frames':>6} {'absent':>6} {'size':>7} {'rel.size':>8} "
      f"{'rel.speed':>9} small"
  )
  for v in stats['per_video'][:max_rows]:
    lines.append(
        f"{v['name'][:28]:<28} {v['frames']:>6} {v['absent_frames']:>6} "
        f"{_fmt(v['average_size']):>7} {_fmt(v['relative_size']):>8} "
        f"{_fmt(v['relative_speed']):>9} {_fmt(v['small'])}"
    )
  if len(stats['per_video']) > max_rows:
    lines.append(
        f'... {len(stats["per_video"]) - max_rows} more videos (see --json)'
    )
  return '\n'.join(lines)


def _jsonable(value):
  """NaN -> None (null) recursively, so the JSON is standard."""
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, float) and not np.isfinite(value):
    return None
  return value


PROGRAM = 'python -m input_pipeline.stats'


def make_flags() -> flags.FlagValues:
  """The command's flags (absl, as every entry point: cost_jax.cli)."""
  fv = flags.FlagValues()
  flags.DEFINE_enum(
      'dataset', None, sorted(DATASETS), 'dataset name', flag_values=fv
  )
  flags.DEFINE_string('root', None, 'dataset root folder', flag_values=fv)
  flags.DEFINE_string('split', 'test', 'dataset split', flag_values=fv)
  flags.DEFINE_string('json', None, 'write the statistics here', flag_values=fv)
  flags.DEFINE_enum(
      'relative_size',
      'side',
      ['side', 'area'],
      'relative size as a side or an area ratio',
      flag_values=fv,
  )
  flags.DEFINE_integer(
      'max_rows', 50, 'per-video rows to print', flag_values=fv
  )
  flags.mark_flags_as_required(['dataset', 'root'], flag_values=fv)
  return fv


@errors.exits_on_user_error
def main(argv=None) -> int:
  args = cli.parse_flags_only(
      make_flags(), cli.argv_of(PROGRAM, argv), PROGRAM, __doc__
  )
  stats = dataset_stats(
      load_dataset(args.dataset, args.root, args.split), args.relative_size
  )
  print(format_table(args.dataset, stats, args.max_rows))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(_jsonable(stats), f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
