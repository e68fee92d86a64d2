"""Tracker speed: single-stream FPS and batched frames/s, JAX vs PyTorch.

    python -m benchmarks.tracker_speed             # smoke + demo, B 1..256
    python -m benchmarks.tracker_speed --models=demo,smoke --batches=1,16 \\
        --dtypes=float32 --before                  # before/after the rewrites
    python -m benchmarks.tracker_speed --models=paper --batches=1,8,64,256
    python -m benchmarks.tracker_speed --quick     # CI-sized: smoke, B 1,4
    taskset -c 0 python -m benchmarks.tracker_speed ...   # one thread each

Single stream = `Tracker.track` on 640x480 frames: host crop, host->device
copy of the uint8 crop, one jitted step (network on cached template/text
features, window, argmax, decode) and the box readback.  Batched = one
step over B crops (copy + step + readback; host cropping is reported per
frame separately).  Compilation is excluded and reported separately; every
figure is the median over repeats with [min, max].  The contenders of a row
(JAX; with --before, JAX with the speed rewrites of
`cost_jax.models.rewrites` off, i.e. the model as it was before them; the
PyTorch reference, f32 eager, benchmarks/tracker_torch.py) take turns
repeat by repeat, so that a machine shared with other work slows them
alike; the load average is printed.  Threads: XLA:CPU runs one per core of
this process's affinity mask and torch is set to the same number (taskset
limits both).  The template and text encoders run once per sequence and
are timed separately.  Weights are random (speed does not depend on them).
Do not run with JAX_DISABLE_MOST_OPTIMIZATIONS (the tests set it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np

# torch's OpenMP threads spin-wait by default; on a shared or busy CPU that
# makes the reference 10x slower (measured: 122 vs 13 ms/step, smoke, 2
# cores).  Passive waiting is fair to it; set OMP_WAIT_POLICY to override.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
import jax  # noqa: E402

from benchmarks import timing  # noqa: E402
from benchmarks import tracker_torch  # noqa: E402
from benchmarks.timing import fmt, summary  # noqa: E402
from configs import cost as cost_config  # noqa: E402
from cost_jax import crops as crops_lib  # noqa: E402
from cost_jax.models import factory, rewrites  # noqa: E402
from cost_jax.tracking.engine import Engine  # noqa: E402
from cost_jax.tracking.tracker import Tracker  # noqa: E402

JAX, BEFORE, TORCH = 'jax', 'jax_before', 'torch'


def parse_args(argv=None):
  ap = argparse.ArgumentParser(
      description=__doc__.split('\n')[0],
      epilog=__doc__.split('\n', 2)[2],
      formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  ap.add_argument(
      '--models',
      default='smoke,demo',
      help='config variants, comma separated (e.g. smoke,demo,'
      'paper,demo+no_lb; "+" joins variant parts)',
  )
  ap.add_argument(
      '--dtypes', default='float32,bfloat16', help='config.model.dtype values'
  )
  ap.add_argument(
      '--batches', default='1,2,4,8,16,32,64,128,256', help='batch sizes'
  )
  for name, default, what in (
      ('frames', 60, 'frames per single-stream repeat'),
      ('steps', 10, 'batched steps per repeat'),
      ('repeats', 5, 'repeats (median [min, max])'),
  ):
    ap.add_argument(f'--{name}', type=int, default=default, help=what)
  ap.add_argument('--image', default='640x480', help='frame size WxH')
  ap.add_argument(
      '--torch',
      choices=('auto', 'off'),
      default='auto',
      help='time the PyTorch reference too when importable',
  )
  ap.add_argument(
      '--before',
      action='store_true',
      help='f32 rows also time JAX with the speed rewrites off '
      '(before/after in one run)',
  )
  ap.add_argument(
      '--json', default='', help='also write all figures to this JSON file'
  )
  ap.add_argument(
      '--quick',
      action='store_true',
      help='CI-sized run: smoke only, batches 1,4, few frames ' 'and repeats',
  )
  args = ap.parse_args(argv)
  if args.quick:
    args.models, args.batches = 'smoke', '1,4'
    args.frames, args.steps, args.repeats = 6, 2, 2
  return args


def make_config(model: str, dtype: str):
  config = cost_config.get_config(model.replace('+', ','))
  config.model.dtype = dtype
  return config


def random_variables(model, spec, seed=0):
  """Random weights of the right shapes, no `init` (BN statistics 0 / 1)."""
  rng = np.random.default_rng(seed)
  shapes = factory.variable_shapes(model, spec)

  def leaf(path, s):
    name = jax.tree_util.keystr(path)
    if 'batch_stats' in name:
      return (np.ones if 'var' in name else np.zeros)(s.shape, s.dtype)
    return (rng.standard_normal(s.shape) * 0.02).astype(s.dtype)

  return jax.tree_util.tree_map_with_path(leaf, shapes)


def make_engine(config, variables=None, before: bool = False) -> Engine:
  """An Engine (random weights by default); ``before``: rewrites off."""
  model, spec = factory.create_model(config, shapes_only=True)
  if variables is None:
    variables = random_variables(model, spec)
  forward = None
  if before:

    def forward(v, x, z, t):  # traced inside: the plain formulations
      with rewrites.disabled():
        return model.apply(v, x, z, t, method=model.track)

  return Engine(
      config, variables, forward=forward, model_and_spec=(model, spec)
  )


def moving_square(n: int, size: tuple, seed: int = 0):
  """n RGB frames (noise + a moving 24-px square) and its boxes (n, 4)."""
  rng = np.random.default_rng(seed)
  w, h = size
  base = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
  frames, boxes = [], []
  for t in range(n):
    f = base.copy()
    x, y = 40 + 3 * t % (w - 80), 40 + 2 * t % (h - 80)
    f[y : y + 24, x : x + 24] = (250, 30, 30)
    frames.append(f)
    boxes.append([x, y, 24.0, 24.0])
  return frames, np.asarray(boxes, np.float64)


def random_tokens(spec):
  if not spec.language:
    return None
  ids = np.zeros((1, spec.text_len), np.int32)
  ids[0, :8] = [101, 1996, 2417, 2482, 2006, 1996, 2187, 102]
  return ids, (ids > 0).astype(np.int32)


def time_encoders(engine: Engine, frame, box, repeats: int) -> dict:
  """Template and text encoding (once per sequence): compile s + ms."""
  out = {}
  _, z = engine.start(frame, box)
  tokens = random_tokens(engine.spec)
  jobs = {'template': lambda: engine.encode_template(engine.variables, z)}
  if tokens is not None:
    jobs['text'] = lambda: engine.encode_text(engine.variables, *tokens)
  for name, fn in jobs.items():
    call = lambda fn=fn: jax.block_until_ready(fn())
    compile_s = timing.first_call_s(call)
    per_s = timing.alternate(
        {name: timing.loop_rate(call, 1, 1)}, max(repeats, 3)
    )[name]
    out[name] = {
        'compile_s': compile_s,
        'ms': summary([1e3 / r for r in per_s]),
    }
  return out


def race(contenders: dict, repeats: int) -> dict:
  """{name: (first_s, repeat)} -> {name: {'compile_s', 'fps'}}, in turns."""
  fps = timing.alternate({n: c[1] for n, c in contenders.items()}, repeats)
  return {
      n: {'compile_s': c[0], 'fps': summary(fps[n])}
      for n, c in contenders.items()
  }


def single_jax(engine: Engine, frames, boxes):
  """`Tracker.track` (crop + copy + step + readback) as a `timing.stream`."""
  tracker = Tracker(engine.config, None, engine=engine)
  tokens = random_tokens(engine.spec)

  def reset(b):
    if b is None:
      tracker.initialize(frames[0], boxes[0], tokens=tokens)
    else:
      cxcywh = np.concatenate([b[:2] + b[2:] / 2, b[2:]])
      engine.update(tracker._state, cxcywh)  # noqa: SLF001

  return timing.stream(tracker.track, reset, frames, boxes)


def time_single(engine: Engine, frames, boxes, repeats: int) -> dict:
  """`Tracker.track` frames/s; first call (compilation) separate."""
  return race({JAX: single_jax(engine, frames, boxes)}, repeats)[JAX]


def batched_jax(engine: Engine, batch: int, steps: int, seed: int = 0):
  """(first_s, repeat) of one step over ``batch`` crops (copy + step +
  readback)."""
  spec, v = engine.spec, engine.variables
  rng = np.random.default_rng(seed)
  side = spec.template_size
  z = rng.integers(0, 255, (1, side, side, 3), dtype=np.uint8)
  template, text = engine.encode(z, random_tokens(spec))
  template, text = engine.batch_caches(template, text, batch)
  crops = rng.integers(
      0, 255, (batch, spec.search_size, spec.search_size, 3), dtype=np.uint8
  )
  geometry = np.tile(
      np.array([[320, 240, 100, 640, 480]], np.float32), (batch, 1)
  )
  call = lambda: jax.device_get(engine.step(v, crops, template, text, geometry))
  return timing.first_call_s(call), timing.loop_rate(call, batch, steps)


def time_batched(engine: Engine, batch: int, steps: int, repeats: int):
  """Frames/s of one step over ``batch`` crops (copy + step + readback)."""
  return race({JAX: batched_jax(engine, batch, steps)}, repeats)[JAX]


def time_host_crop(frames, box, repeats: int) -> dict:
  """Host search-crop time per frame (4x context, resized to 256), ms."""
  s_x = crops_lib.context_crop_side(box[2], box[3], 4.0)
  pad = crops_lib.pad_colour(frames[0])
  centre = box[:2] + box[2:] / 2
  crop_all = lambda: [
      crops_lib.get_subwindow(f, centre, 256, s_x, pad) for f in frames
  ]
  per_s = timing.alternate(
      {'crop': timing.loop_rate(crop_all, len(frames), 1)}, repeats
  )['crop']
  return summary([1e3 / r for r in per_s])


def time_model(model: str, dtype: str, frames, boxes, batches, args) -> dict:
  """JAX (+ JAX before, + torch for f32) rows of one model, in turns."""
  config = make_config(model, dtype)
  engine = make_engine(config)
  spec, tokens = engine.spec, random_tokens(engine.spec)
  f32 = dtype == 'float32'
  before = None
  if args.before and f32:
    before = make_engine(config, engine.variables, before=True)
  ref = None
  if args.torch == 'auto' and f32:
    ref = tracker_torch.reference_model(config, spec)
  run = {
      'model': model,
      'dtype': dtype,
      'grid': engine.grid_side,
      'encoders': time_encoders(engine, frames[0], boxes[0], args.repeats),
  }
  single = {JAX: single_jax(engine, frames, boxes)}
  if before:
    single[BEFORE] = single_jax(before, frames, boxes)
  if ref:
    single[TORCH] = tracker_torch.single(ref[1], config, tokens, frames, boxes)
  run['single'] = race(single, args.repeats)
  run['batched'] = {}
  for b in batches:
    contenders = {JAX: batched_jax(engine, b, args.steps)}
    if before:
      contenders[BEFORE] = batched_jax(before, b, args.steps)
    if ref:
      contenders[TORCH] = tracker_torch.batched(
          *ref, spec, config, tokens, b, args.steps
      )
    run['batched'][b] = race(contenders, args.repeats)
  return run


def cores() -> int:
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0))
  return os.cpu_count()


def machine() -> str:
  dev = jax.devices()[0]
  return (
      f'{platform.processor() or platform.machine()}, {cores()} of '
      f'{os.cpu_count()} cores; jax {jax.__version__} on {dev.platform} '
      f'({dev.device_kind}); python {platform.python_version()}'
  )


def threads(use_torch: bool) -> str:
  """Sets torch's threads to XLA:CPU's (one per core); says both."""
  out = f'XLA:CPU {cores()} (one per core)'
  if use_torch:
    try:
      # Lazy: torch (optional, heavy) only when the reference is timed.
      import torch
    except ImportError:
      return out
    torch.set_num_threads(cores())
    out += (
        f', torch {torch.get_num_threads()} '
        f'(OMP_WAIT_POLICY={os.environ.get("OMP_WAIT_POLICY")})'
    )
  return out


def load_average() -> str:
  if not hasattr(os, 'getloadavg'):
    return '?'
  return ' '.join(f'{v:.1f}' for v in os.getloadavg())


def main(argv=None) -> int:
  args = parse_args(argv)
  if jax.config.read('jax_disable_most_optimizations'):
    print(
        'WARNING: JAX_DISABLE_MOST_OPTIMIZATIONS is set: figures are not '
        'representative'
    )
  size = tuple(int(v) for v in args.image.lower().split('x'))
  batches = [int(b) for b in args.batches.split(',') if b]
  frames, boxes = moving_square(args.frames + 1, size)
  results = {
      'machine': machine(),
      'threads': threads(args.torch == 'auto'),
      'load_start': load_average(),
      'args': vars(args),
      'runs': [],
  }
  print(f'machine: {results["machine"]}\nthreads: {results["threads"]}')
  crop_ms = fmt(time_host_crop(frames, boxes[0], args.repeats), 1, 3)
  print(f'host search crop (24-px box, 4x -> 256): {crop_ms} ms/frame')
  for model in args.models.split(','):
    for dtype in args.dtypes.split(','):
      run = time_model(model, dtype, frames, boxes, batches, args)
      results['runs'].append(run)
      print(
          f'{model} {dtype}: single {fmt(run["single"][JAX]["fps"])} FPS',
          flush=True,
      )
  results['load_end'] = load_average()
  print(format_table(results))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1, default=str)
  return 0


def _row(times: dict) -> str:
  """JAX, compile s, JAX before, torch, JAX/torch, JAX/before cells."""
  med = {n: t['fps']['median'] for n, t in times.items()}
  cells = [f'{fmt(times[JAX]["fps"]):>22}', f'{times[JAX]["compile_s"]:>8.1f}']
  for name in (BEFORE, TORCH):
    cells.append(f'{fmt(times[name]["fps"]) if name in times else "":>22}')
  for name in (TORCH, BEFORE):
    cells.append(f'{med[JAX] / med[name]:>8.2f}' if name in med else ' ' * 8)
  return ''.join(cells)


def format_table(results: dict) -> str:
  """Single-stream and batched tables (median [min, max] over repeats)."""
  head = (
      f'{"JAX":>22}{"comp. s":>8}{"JAX before":>22}{"torch ref":>22}'
      f'{"/torch":>8}{"/before":>8}'
  )
  lines = [
      '',
      f'threads: {results["threads"]}; load average (1, 5, 15 min) '
      f'{results["load_start"]} at the start, {results["load_end"]} at '
      'the end',
      'single stream (Tracker.track: crop + copy + step + readback), FPS',
      f'{"model":<12}{"dtype":<9}{"":>5}{head}{"templ. ms":>10}'
      f'{"text ms":>8}',
  ]
  for r in results['runs']:
    enc = r['encoders']
    text = f'{enc["text"]["ms"]["median"]:.2f}' if 'text' in enc else 'n/a'
    lines.append(
        f'{r["model"]:<12}{r["dtype"]:<9}{"":>5}{_row(r["single"])}'
        f'{enc["template"]["ms"]["median"]:>10.2f}{text:>8}'
    )
  lines += [
      '',
      'batched (one step over B crops: copy + step + readback), ' 'frames/s',
      f'{"model":<12}{"dtype":<9}{"B":>5}{head}',
  ]
  for r in results['runs']:
    for b, t in r['batched'].items():
      lines.append(f'{r["model"]:<12}{r["dtype"]:<9}{b:>5}{_row(t)}')
  return '\n'.join(lines)


if __name__ == '__main__':
  sys.exit(main())
