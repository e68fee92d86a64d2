"""Tracker speed: single-stream FPS and batched frames/s, JAX f32 / bf16 (+ PyTorch reference).

    python -m benchmarks.tracker_speed                       # smoke + demo, batches 1..256
    python -m benchmarks.tracker_speed --models=paper --batches=1,8,64,256   # on a GPU
    python -m benchmarks.tracker_speed --quick               # CI-sized: smoke, batches 1,4

Single stream = `Tracker.track` on 640x480 frames: host crop, host->device
copy of the uint8 crop, one jitted step (network on cached template/text
features, window, argmax, decode) and the box readback.  Batched = one
step over B crops (copy + step + readback; host cropping is reported per
frame separately).  Compilation is excluded and reported separately; every
figure is the median over repeats with [min, max].  The template and text
encoders run once per sequence and are timed separately.  Weights are
random (speed does not depend on them).  Do not run with
JAX_DISABLE_MOST_OPTIMIZATIONS (the tests set it).  The PyTorch reference
(torch_reference/) is timed in the same run when importable (f32, eager).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

import numpy as np

# torch's OpenMP threads spin-wait by default; on a shared or busy CPU that makes the
# reference 10x slower (measured: 122 vs 13 ms/step, smoke, 2 cores).  Passive waiting
# is fair to it; set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import jax  # noqa: E402

from benchmarks.timing import fmt, summary  # noqa: E402
from configs import cost as cost_config  # noqa: E402
from cost_jax import crops as crops_lib  # noqa: E402
from cost_jax.models import factory  # noqa: E402
from cost_jax.tracking import runner  # noqa: E402
from cost_jax.tracking.engine import Engine, hanning_window  # noqa: E402
from cost_jax.tracking.tracker import Tracker  # noqa: E402


def parse_args(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               epilog=__doc__.split('\n', 2)[2])
  ap.add_argument('--models', default='smoke,demo',
                  help='config variants, comma separated (e.g. smoke,demo,paper,demo+no_lb; '
                       '"+" joins variant parts)')
  ap.add_argument('--dtypes', default='float32,bfloat16', help='config.model.dtype values')
  ap.add_argument('--batches', default='1,2,4,8,16,32,64,128,256', help='batch sizes')
  ap.add_argument('--frames', type=int, default=60, help='frames per single-stream repeat')
  ap.add_argument('--steps', type=int, default=10, help='batched steps per repeat')
  ap.add_argument('--repeats', type=int, default=5)
  ap.add_argument('--image', default='640x480', help='frame size WxH')
  ap.add_argument('--torch', choices=('auto', 'off'), default='auto',
                  help='time the PyTorch reference too when importable')
  ap.add_argument('--json', default='', help='also write all figures to this JSON file')
  ap.add_argument('--quick', action='store_true',
                  help='CI-sized run: smoke only, batches 1,4, few frames and repeats')
  args = ap.parse_args(argv)
  if args.quick:
    args.models, args.batches, args.frames, args.steps, args.repeats = 'smoke', '1,4', 6, 2, 2
  return args


def make_config(model: str, dtype: str):
  config = cost_config.get_config(model.replace('+', ','))
  config.model.dtype = dtype
  return config


def random_variables(model, spec, seed=0):
  """Random weights of the right shapes without compiling `init` (BN statistics 0 / 1)."""
  rng = np.random.default_rng(seed)
  shapes = factory.variable_shapes(model, spec)

  def leaf(path, s):
    name = jax.tree_util.keystr(path)
    if 'batch_stats' in name:
      return np.ones(s.shape, s.dtype) if 'var' in name else np.zeros(s.shape, s.dtype)
    return (rng.standard_normal(s.shape) * 0.02).astype(s.dtype)
  return jax.tree_util.tree_map_with_path(leaf, shapes)


def make_engine(config) -> Engine:
  model, spec = factory.create_model(config, shapes_only=True)
  return Engine(config, random_variables(model, spec), model_and_spec=(model, spec))


def moving_square(n: int, size: tuple, seed: int = 0):
  """n RGB frames (noise + a 24-px square moving diagonally) and its boxes (n, 4)."""
  rng = np.random.default_rng(seed)
  w, h = size
  base = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
  frames, boxes = [], []
  for t in range(n):
    f = base.copy()
    x, y = 40 + 3 * t % (w - 80), 40 + 2 * t % (h - 80)
    f[y:y + 24, x:x + 24] = (250, 30, 30)
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
  """Template and text encoding (once per sequence): compile + median ms."""
  out = {}
  _, z = engine.start(frame, box)
  tokens = random_tokens(engine.spec)
  jobs = {'template': lambda: engine.encode_template(engine.variables, z)}
  if tokens is not None:
    jobs['text'] = lambda: engine.encode_text(engine.variables, *tokens)
  for name, fn in jobs.items():
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(max(repeats, 3)):
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      times.append(time.perf_counter() - t0)
    out[name] = {'compile_s': compile_s, 'ms': summary([t * 1e3 for t in times])}
  return out


def time_single(engine: Engine, frames, boxes, repeats: int) -> dict:
  """`Tracker.track` frames/s (crop + copy + step + readback), first call = compile.

  Random weights let the box wander and grow, so after every frame the state
  is put back on the true box: every frame then crops a realistic 4x window.
  """
  tracker = Tracker(engine.config, None, engine=engine)
  tokens = random_tokens(engine.spec)
  tracker.initialize(frames[0], boxes[0], tokens=tokens)
  t0 = time.perf_counter()
  tracker.track(frames[1])
  compile_s = time.perf_counter() - t0
  fps = []
  for _ in range(repeats):
    tracker.initialize(frames[0], boxes[0], tokens=tokens)
    elapsed = 0.0
    for f, b in zip(frames[1:], boxes[1:]):
      t0 = time.perf_counter()
      tracker.track(f)
      elapsed += time.perf_counter() - t0
      engine.update(tracker._state, np.concatenate([b[:2] + b[2:] / 2, b[2:]]))  # noqa: SLF001
    fps.append((len(frames) - 1) / elapsed)
  return {'compile_s': compile_s, 'fps': summary(fps)}


def time_batched(engine: Engine, batch: int, steps: int, repeats: int, seed: int = 0) -> dict:
  """Frames/s of one step over ``batch`` crops (copy + step + readback)."""
  spec, v = engine.spec, engine.variables
  rng = np.random.default_rng(seed)
  z = rng.integers(0, 255, (1, spec.template_size, spec.template_size, 3), dtype=np.uint8)
  template, text = engine.encode(z, random_tokens(spec))
  template, text = runner.batch_caches(engine, template, text, batch)
  crops = rng.integers(0, 255, (batch, spec.search_size, spec.search_size, 3), dtype=np.uint8)
  geometry = np.tile(np.array([[320, 240, 100, 640, 480]], np.float32), (batch, 1))
  t0 = time.perf_counter()
  jax.device_get(engine.step(v, crops, template, text, geometry))
  compile_s = time.perf_counter() - t0
  fps = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
      jax.device_get(engine.step(v, crops, template, text, geometry))
    fps.append(batch * steps / (time.perf_counter() - t0))
  return {'compile_s': compile_s, 'fps': summary(fps)}


def time_host_crop(frames, box, repeats: int) -> dict:
  """Host search-crop time per frame (4x context, resized to 256), ms."""
  s_x = crops_lib.context_crop_side(box[2], box[3], 4.0)
  pad = crops_lib.pad_colour(frames[0])
  centre = box[:2] + box[2:] / 2
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for f in frames:
      crops_lib.get_subwindow(f, centre, 256, s_x, pad)
    times.append((time.perf_counter() - t0) / len(frames) * 1e3)
  return summary(times)


# ---------------------------------------------------------------------------------------------
# The PyTorch reference (torch_reference/), timed in the same run, f32, eager:
# * single stream: torch_reference.tracker.ReferenceTracker (TransT's loop: numpy crop,
#   tensor copy, network on cached template/text, window/argmax/decode on host);
# * batched: its network step (`track` on cached features + window/argmax in torch), uint8
#   crops copied in and the boxes read back, at the same batch sizes.
# HOOK for more reference variants (torch.compile, fp16/bf16 autocast on GPU): add rows here.
# ---------------------------------------------------------------------------------------------
def time_torch(config, engine: Engine, frames, boxes, batches, args) -> dict | None:
  try:  # Optional: the reference needs torch (the `torch` extra).
    import torch  # pylint: disable=g-import-not-at-top
    import torch_reference  # pylint: disable=g-import-not-at-top
    from torch_reference import tracker as ref_tracker  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    print(f'PyTorch reference not timed: {e}')
    return None
  spec = engine.spec
  bert = None
  if spec.language:
    bert = dataclasses.asdict(spec.bert)
  ref = torch_reference.build_model(config, bert).eval()
  torch_reference.randomize_(ref, 0)
  tokens = random_tokens(spec)
  ids, mask = (tokens[0][0], tokens[1][0]) if tokens else (None, None)
  single = ref_tracker.ReferenceTracker(ref, config)
  fps = []
  for _ in range(args.repeats):
    single.initialize(frames[0], boxes[0], ids, mask)
    elapsed = 0.0
    for f, b in zip(frames[1:], boxes[1:]):  # state reset to the true box, as time_single
      t0 = time.perf_counter()
      single.track(f)
      elapsed += time.perf_counter() - t0
      single.center, single.size = b[:2] + b[2:] / 2, b[2:].copy()
    fps.append((len(frames) - 1) / elapsed)
  out = {'single': {'fps': summary(fps)}, 'batched': {}}
  with torch.no_grad():
    for b in batches:
      out['batched'][b] = {'fps': summary(_torch_batched(torch, ref, spec, config, tokens, b,
                                                         args.steps, args.repeats))}
  return out


def _torch_batched(torch, ref, spec, config, tokens, batch, steps, repeats):
  """Per-repeat frames/s of the reference network step over ``batch`` crops."""
  window = torch.from_numpy(hanning_window(spec.grid_side)).float()
  wi = float(config.track.window_influence)
  template = ref.encode_template(torch.zeros(1, 3, spec.template_size, spec.template_size))
  text = ref.encode_text(*(torch.from_numpy(t).long() for t in tokens)) if tokens else {}
  tb = {k: (v.expand(batch, *v.shape[1:]) if v.dim() == 3 else v) for k, v in template.items()}
  xb = {k: v.expand(batch, *v.shape[1:]) for k, v in text.items()}
  crops = np.random.default_rng(0).integers(
      0, 255, (batch, spec.search_size, spec.search_size, 3), dtype=np.uint8)

  def step():
    o = ref.track(torch.from_numpy(crops).permute(0, 3, 1, 2).float(), tb, xb)
    logits = o['logits']
    p = logits.softmax(-1)[..., 0] if logits.dim() == 3 else logits.sigmoid()
    best = (p * (1 - wi) + window * wi).argmax(-1)
    return o['boxes'][torch.arange(batch), best].numpy()
  step()
  fps = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
      step()
    fps.append(batch * steps / (time.perf_counter() - t0))
  return fps


def machine() -> str:
  dev = jax.devices()[0]
  return (f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores; '
          f'jax {jax.__version__} on {dev.platform} ({dev.device_kind}); '
          f'python {platform.python_version()}')


def main(argv=None) -> int:
  args = parse_args(argv)
  if os.environ.get('JAX_DISABLE_MOST_OPTIMIZATIONS'):
    print('WARNING: JAX_DISABLE_MOST_OPTIMIZATIONS is set: figures are not representative')
  size = tuple(int(v) for v in args.image.lower().split('x'))
  batches = [int(b) for b in args.batches.split(',') if b]
  frames, boxes = moving_square(args.frames + 1, size)
  results = {'machine': machine(), 'args': vars(args), 'runs': []}
  print(f'machine: {results["machine"]}')
  print(f'host search crop (24-px box, 4x -> 256): '
        f'{fmt(time_host_crop(frames, boxes[0], args.repeats), 1, 3)} ms/frame')
  for model in args.models.split(','):
    for dtype in args.dtypes.split(','):
      config = make_config(model, dtype)
      engine = make_engine(config)
      run = {'model': model, 'dtype': dtype, 'grid': engine.grid_side,
             'encoders': time_encoders(engine, frames[0], boxes[0], args.repeats),
             'single': time_single(engine, frames, boxes, args.repeats),
             'batched': {b: time_batched(engine, b, args.steps, args.repeats) for b in batches}}
      if args.torch == 'auto' and dtype == 'float32':
        run['torch'] = time_torch(config, engine, frames, boxes, batches, args)
      results['runs'].append(run)
      print(f'{model} {dtype}: single {fmt(run["single"]["fps"])} FPS', flush=True)
  print(format_table(results))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1, default=str)
  return 0


def format_table(results: dict) -> str:
  """Single-stream and batched tables (median [min, max] over repeats)."""
  lines = ['', 'single stream (Tracker.track: crop + copy + step + readback; batch 1), FPS',
           f'{"model":<14}{"dtype":<10}{"JAX":>26}{"compile s":>11}{"template ms":>13}'
           f'{"text ms":>9}{"torch ref":>26}{"JAX/torch":>10}']
  for r in results['runs']:
    enc = r['encoders']
    text = f'{enc["text"]["ms"]["median"]:.2f}' if 'text' in enc else 'n/a'
    ref = (r.get('torch') or {}).get('single')
    ratio = f'{r["single"]["fps"]["median"] / ref["fps"]["median"]:.2f}' if ref else ''
    lines.append(f'{r["model"]:<14}{r["dtype"]:<10}{fmt(r["single"]["fps"]):>26}'
                 f'{r["single"]["compile_s"]:>11.1f}{enc["template"]["ms"]["median"]:>13.2f}'
                 f'{text:>9}{fmt(ref["fps"]) if ref else "":>26}{ratio:>10}')
  lines += ['', 'batched (one step over B crops: copy + step + readback), frames/s',
            f'{"model":<14}{"dtype":<10}{"B":>5}{"JAX":>28}{"compile s":>11}{"torch ref":>28}'
            f'{"JAX/torch":>10}']
  for r in results['runs']:
    for b, t in r['batched'].items():
      ref = (r.get('torch') or {}).get('batched', {}).get(b)
      ratio = f'{t["fps"]["median"] / ref["fps"]["median"]:.2f}' if ref else ''
      lines.append(f'{r["model"]:<14}{r["dtype"]:<10}{b:>5}{fmt(t["fps"]):>28}'
                   f'{t["compile_s"]:>11.1f}{fmt(ref["fps"]) if ref else "":>28}{ratio:>10}')
  return '\n'.join(lines)


if __name__ == '__main__':
  sys.exit(main())
