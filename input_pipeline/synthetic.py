"""Synthetic vision-language small-object videos, written in the VL-SOT500 or LaSOT layout.

    python -m input_pipeline.synthetic --out /tmp/syn --layout vlsot500 --num_videos 20 --seed 0

Each video has a small target (≈5-25 px) of a simple shape and colour,
look-alike distractors that differ from it in colour OR shape (`--distractors
color` keeps the target's shape for all of them, so only the colour word tells
them apart; `--distractors language` also draws the target grey in its first
frame(s), so the template shows its shape but not its colour and only the
description tells it from its look-alikes), a textured background panned by the camera, clutter, an optional
occluder passing over the target and an optional stretch out of view (absent
frames), and a description such as "the red triangle moving left".  A
`--high_speed_fraction` of the videos move at 2-5 target sizes per frame with
motion blur; in the VL-SOT500 layout they form the VL-SOT270 subset (with
relative_speed.txt), the others VL-SOT230.  In the LaSOT layout the class is
the shape, and `testing_set.txt` / `training_set.txt` split the videos.

The output is a function of the arguments and the seed only: the same seed
gives byte-identical annotation files and identical frames.  A marker file
records a finished run; `generate` skips work when it matches.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import sys

from absl import flags
import cv2
import numpy as np

from cost_jax import cli
from cost_jax import errors
from input_pipeline.stats import relative_speed
from input_pipeline.synth_render import render_frames
from input_pipeline.synth_labels import annotate, attribute_vector
from input_pipeline.synth_scene import DISTRACTOR_MODES, Scene, SynthOptions, sample_scene

__all__ = [
    'generate',
    'write_video',
    'make_scene',
    'video_names',
    'LAYOUTS',
    'SynthOptions',
    'main',
]

LAYOUTS = ('vlsot500', 'lasot')
MARKER = '.synthetic_complete.json'
VERSION = 1
_GREY_WEIGHTS = np.array([0.114, 0.587, 0.299])  # BGR luma


def make_scene(
    index: int, seed: int, opts: SynthOptions, high_speed: bool
) -> Scene:
  """The scene of video `index`; each video has its own stream, so videos are independent."""
  return sample_scene(np.random.default_rng([seed, index]), opts, high_speed)


def high_speed_plan(num_videos: int, seed: int, fraction: float) -> np.ndarray:
  """Which videos are high-speed: round(fraction * num_videos) of them, spread by the seed."""
  order = np.random.default_rng([seed, 0x5EED]).permutation(num_videos)
  return order < int(round(fraction * num_videos))


def video_names(scenes: list[Scene], layout: str) -> list[str]:
  """VL-SOT500: `syn0003_red_triangle`; LaSOT: `<shape>-<k>` numbered per shape from 1."""
  if layout == 'vlsot500':
    return [
        f'syn{i:04d}_{s.target.colour}_{s.target.shape}'
        for i, s in enumerate(scenes)
    ]
  counts: dict[str, int] = {}
  names = []
  for s in scenes:
    counts[s.target.shape] = counts.get(s.target.shape, 0) + 1
    names.append(f'{s.target.shape}-{counts[s.target.shape]}')
  return names


def video_dir(out_dir: str, layout: str, name: str, scene: Scene) -> str:
  if layout == 'vlsot500':
    return os.path.join(
        out_dir, 'VL-SOT270' if scene.high_speed else 'VL-SOT230', name
    )
  return os.path.join(out_dir, scene.target.shape, name)


def _box_lines(boxes: np.ndarray) -> str:
  rows = [
      '0,0,0,0' if np.isnan(b).any() else ','.join(f'{v:.2f}' for v in b)
      for b in boxes
  ]
  return '\n'.join(rows) + '\n'


def _write(path: str, text: str):
  with open(path, 'w', newline='\n') as f:
    f.write(text)


def write_frames(
    folder: str, scene: Scene, pattern: str, quality: int
) -> float:
  """Renders and writes the frames as JPEG; returns the mean brightness (grey level)."""
  os.makedirs(folder, exist_ok=True)
  brightness = 0.0
  params = [cv2.IMWRITE_JPEG_QUALITY, quality]
  for t, frame in enumerate(render_frames(scene)):
    if not cv2.imwrite(
        os.path.join(folder, pattern.format(t + 1)), frame, params
    ):
      raise OSError(f'cannot write frames to {folder}')
    brightness += float(np.dot(cv2.mean(frame)[:3], _GREY_WEIGHTS))
  return brightness / scene.num_frames


def write_video(
    out_dir: str, layout: str, name: str, scene: Scene, quality: int = 90
) -> str:
  """Writes one video (frames + annotation files) in `layout`; returns its folder."""
  folder = video_dir(out_dir, layout, name, scene)
  labels = annotate(scene)
  speed = relative_speed(labels['boxes'])
  if layout == 'vlsot500':
    brightness = write_frames(
        os.path.join(folder, 'img'), scene, '{:06d}.jpg', quality
    )
    _write(
        os.path.join(folder, 'groundtruth_rect.txt'),
        _box_lines(labels['boxes']),
    )
    _write(
        os.path.join(folder, 'absent.txt'),
        '\n'.join(str(int(a)) for a in labels['absent']) + '\n',
    )
    attributes = attribute_vector(scene, labels, brightness, speed)
    _write(
        os.path.join(folder, 'attributes.txt'),
        ','.join(map(str, attributes)) + '\n',
    )
    _write(os.path.join(folder, 'language.txt'), scene.description + '\n')
    if scene.high_speed:
      _write(os.path.join(folder, 'relative_speed.txt'), f'{speed:.4f}\n')
  elif layout == 'lasot':
    write_frames(os.path.join(folder, 'img'), scene, '{:08d}.jpg', quality)
    _write(os.path.join(folder, 'groundtruth.txt'), _box_lines(labels['boxes']))
    for fname, key in (
        ('full_occlusion.txt', 'full_occlusion'),
        ('out_of_view.txt', 'out_of_view'),
    ):
      _write(
          os.path.join(folder, fname),
          ','.join(str(int(v)) for v in labels[key]) + '\n',
      )
    _write(os.path.join(folder, 'nlp.txt'), scene.description + '\n')
  else:
    raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
  return folder


def _params(
    layout, num_videos, seed, opts, high_speed_fraction, test_fraction, quality
) -> dict:
  options = dataclasses.asdict(opts)
  if not opts.grey_frames and opts.distractors != 'language':
    # Sets made before grey starts existed keep their marker (no regeneration).
    for key in ('grey_frames', 'grey_fraction'):
      options.pop(key)
  return {
      'version': VERSION,
      'layout': layout,
      'num_videos': num_videos,
      'seed': seed,
      'options': options,
      'high_speed_fraction': high_speed_fraction,
      'test_fraction': test_fraction,
      'quality': quality,
  }


def _read_marker(out_dir: str) -> dict | None:
  try:
    with open(os.path.join(out_dir, MARKER)) as f:
      return json.load(f)
  except (FileNotFoundError, json.JSONDecodeError):
    return None


def _remove_previous(out_dir: str, marker: dict):
  """Deletes the video folders a previous run (recorded in its marker) wrote."""
  for rel in marker.get('folders', []):
    path = os.path.join(out_dir, rel)
    if os.path.isdir(path):
      shutil.rmtree(path)
  os.remove(os.path.join(out_dir, MARKER))


def _write_splits(
    out_dir: str, names: list[str], seed: int, test_fraction: float
):
  order = np.random.default_rng([seed, 0x7E57]).permutation(len(names))
  test = order < int(round(test_fraction * len(names)))
  _write(
      os.path.join(out_dir, 'testing_set.txt'),
      ''.join(n + '\n' for n, t in zip(names, test) if t),
  )
  _write(
      os.path.join(out_dir, 'training_set.txt'),
      ''.join(n + '\n' for n, t in zip(names, test) if not t),
  )


def _one_video(job) -> str:
  out_dir, layout, name, index, seed, opts, high_speed, quality = job
  scene = make_scene(index, seed, opts, high_speed)
  return write_video(out_dir, layout, name, scene, quality)


def generate(
    out_dir: str,
    layout: str = 'vlsot500',
    num_videos: int = 20,
    seed: int = 0,
    *,
    frames: int = 60,
    size: tuple[int, int] = (320, 240),
    distractors: str = 'mixed',
    high_speed_fraction: float = 0.3,
    test_fraction: float = 0.2,
    quality: int = 90,
    workers: int = 1,
    force: bool = False,
    replace: bool = True,
    **scene_options,
) -> list[str]:
  """Generates `num_videos` videos into `out_dir` and returns their sequence names.

  Skips the work if `out_dir` holds a finished run with the same arguments;
  a finished run with other arguments is replaced, or, with
  `replace=False`, refused (SetMismatchError naming the differences).
  `scene_options` are further `SynthOptions` fields (e.g.
  `num_distractors=(1, 2)`).
  """
  if layout not in LAYOUTS:
    raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
  opts = SynthOptions(
      frames=frames,
      width=size[0],
      height=size[1],
      distractors=distractors,
      **scene_options,
  )
  params = _params(
      layout,
      num_videos,
      seed,
      opts,
      high_speed_fraction,
      test_fraction,
      quality,
  )
  params = json.loads(
      json.dumps(params)
  )  # tuples -> lists, as read back from the marker
  marker = _read_marker(out_dir)
  if marker is not None and marker.get('params') == params and not force:
    return marker['names']
  if marker is not None and not replace and not force:
    raise SetMismatchError(
        out_dir, _differences(marker.get('params', {}), params)
    )
  if marker is not None:
    _remove_previous(out_dir, marker)
  os.makedirs(out_dir, exist_ok=True)
  fast = high_speed_plan(num_videos, seed, high_speed_fraction)
  scenes = [make_scene(i, seed, opts, bool(fast[i])) for i in range(num_videos)]
  names = video_names(scenes, layout)
  jobs = [
      (out_dir, layout, names[i], i, seed, opts, bool(fast[i]), quality)
      for i in range(num_videos)
  ]
  if workers > 1:
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
      folders = list(pool.map(_one_video, jobs))
  else:
    folders = [
        write_video(out_dir, layout, names[i], scenes[i], quality)
        for i in range(num_videos)
    ]
  if layout == 'lasot':
    _write_splits(out_dir, names, seed, test_fraction)
  record = {
      'params': params,
      'names': names,
      'folders': [os.path.relpath(f, out_dir) for f in folders],
  }
  _write(os.path.join(out_dir, MARKER), json.dumps(record, indent=1) + '\n')
  return names


class SetMismatchError(ValueError):
  """A folder holds a finished synthetic set made with other arguments."""

  def __init__(self, out_dir: str, differences: list[str]):
    self.out_dir, self.differences = out_dir, differences
    super().__init__(
        f'{out_dir} holds a synthetic set made with other arguments '
        f'({"; ".join(differences)})'
    )


def _differences(old: dict, new: dict, prefix: str = '') -> list[str]:
  """'key: old -> new' for every differing (nested) parameter."""
  out = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _differences(a, b, f'{prefix}{key}.')
    elif a != b:
      out.append(f'{prefix}{key}: {a!r} -> {b!r}')
  return out


PROGRAM = 'python -m input_pipeline.synthetic'


def _size(text: str) -> tuple[int, int]:
  try:
    w, h = (int(v) for v in text.lower().split('x'))
  except ValueError:
    raise errors.InvalidValue(
        f'--size={text}', 'give the frame size as WxH, e.g. 320x240'
    ) from None
  return w, h


def make_flags() -> flags.FlagValues:
  """The command's flags (absl, as every entry point: cost_jax.cli)."""
  fv = flags.FlagValues()
  flags.DEFINE_string('out', None, 'output folder', flag_values=fv)
  flags.DEFINE_enum(
      'layout', 'vlsot500', list(LAYOUTS), 'dataset layout', flag_values=fv
  )
  flags.DEFINE_integer('num_videos', 20, 'videos', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'random seed', flag_values=fv)
  flags.DEFINE_integer('frames', 60, 'frames per video', flag_values=fv)
  flags.DEFINE_string('size', '320x240', 'frame size WxH', flag_values=fv)
  flags.DEFINE_enum(
      'distractors',
      'mixed',
      list(DISTRACTOR_MODES),
      'how look-alikes differ from the target',
      flag_values=fv,
  )
  flags.DEFINE_integer(
      'grey_frames',
      0,
      'the target is grey in its first N frames',
      flag_values=fv,
  )
  flags.DEFINE_float(
      'high_speed_fraction', 0.3, 'fraction of fast videos', flag_values=fv
  )
  flags.DEFINE_float('test_fraction', 0.2, 'LaSOT layout split', flag_values=fv)
  flags.DEFINE_integer('quality', 90, 'JPEG quality', flag_values=fv)
  flags.DEFINE_integer('workers', 1, 'processes', flag_values=fv)
  flags.DEFINE_bool(
      'force', False, 'regenerate even if complete', flag_values=fv
  )
  flags.mark_flag_as_required('out', flag_values=fv)
  return fv


@errors.exits_on_user_error
def main(argv=None) -> int:
  args = cli.parse_flags_only(
      make_flags(), cli.argv_of(PROGRAM, argv), PROGRAM, __doc__
  )
  names = generate(
      args.out,
      args.layout,
      args.num_videos,
      args.seed,
      frames=args.frames,
      size=_size(args.size),
      distractors=args.distractors,
      high_speed_fraction=args.high_speed_fraction,
      test_fraction=args.test_fraction,
      quality=args.quality,
      workers=args.workers,
      force=args.force,
      grey_frames=args.grey_frames,
  )
  print(f'{len(names)} videos in {args.out} ({args.layout} layout)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
