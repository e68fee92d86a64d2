"""Throughput of the tf.data pair pipeline vs the cv2 JPEG decode bound, on this machine.

    python -m benchmarks.input_pipeline            # 1280x720 frames (LaSOT-like), ~1 min
    python -m benchmarks.input_pipeline --quick    # small and short, for CI
    python -m benchmarks.input_pipeline --root DIR # your own set in the VL-SOT500 layout

Every pair decodes two frames (template and search; one for image datasets),
so the decode bound is (frames decoded per second) / 2, measured on the same
frames in the same run: open + read + cv2.imdecode, once in one thread and once
in as many threads as there are cores (cv2 releases the GIL, as the pipeline's
parallel map does).  The ratio to report is pipeline pairs/s over the
threaded bound (target >= 0.7).  Rounds of the three measurements are
interleaved and medians reported, so other load on the machine hits all of
them alike; the CPU time per pair (decode-only vs pipeline) is printed too, a
ratio that does not depend on that load.  Crops use the paper sizes
(128 / 256) unless --variant says otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import cv2  # noqa: E402  (after the TF log level)
import numpy as np  # noqa: E402

from configs import cost  # noqa: E402
from input_pipeline import pairs  # noqa: E402
from input_pipeline import synthetic  # noqa: E402
from input_pipeline.readers import load_dataset  # noqa: E402
from input_pipeline.sequence import read_image_size  # noqa: E402


def _parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
      '--quick', action='store_true', help='small frames, few batches'
  )
  parser.add_argument(
      '--root', default='', help='a VL-SOT500-layout set (default: generate)'
  )
  parser.add_argument(
      '--size', default='1280x720', help='generated frame size WxH'
  )
  parser.add_argument('--num_videos', type=int, default=8)
  parser.add_argument(
      '--frames', type=int, default=40, help='frames per generated video'
  )
  parser.add_argument('--batches', type=int, default=40, help='timed batches')
  parser.add_argument('--batch_size', type=int, default=16)
  parser.add_argument(
      '--rounds',
      type=int,
      default=5,
      help='interleaved measurement rounds (medians are reported)',
  )
  parser.add_argument(
      '--variant', default='paper', help='config variant (crop sizes)'
  )
  parser.add_argument(
      '--threads',
      type=int,
      default=os.cpu_count() or 1,
      help='threads for the parallel decode bound',
  )
  args = parser.parse_args(argv)
  if args.quick:
    args.size, args.num_videos, args.frames, args.batches, args.rounds = (
        '320x240',
        3,
        20,
        5,
        1,
    )
  return args


def _frames(root: str) -> tuple[list[str], list[tuple[int, int]]]:
  """Every frame of the set and the distinct frame sizes."""
  frames = [f for s in load_dataset('synthetic', root) for f in s.frames]
  return frames, sorted({read_image_size(f) for f in frames})


def _decode(path: str):
  with open(path, 'rb') as f:
    data = f.read()
  return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def decode_rate(
    frames: list[str], threads: int, min_seconds: float
) -> tuple[float, float]:
  """(frames decoded per second, CPU seconds per frame), repeating the list for `min_seconds`."""
  done, start, cpu = 0, time.perf_counter(), time.process_time()
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    while True:
      for image in pool.map(_decode, frames):
        assert image is not None
      done += len(frames)
      elapsed = time.perf_counter() - start
      if elapsed >= min_seconds:
        return done / elapsed, (time.process_time() - cpu) / done


def pipeline_rate(root: str, args) -> tuple[float, float, dict]:
  """(pairs per second, CPU seconds per pair, frame stats) of a fresh `make_train_iterator`
  after a warm-up (the CPU time includes prefetching ahead).

  A fresh iterator per measurement: a paused one would fill its prefetch buffer
  (and steal CPU) while the decode bound is measured.
  """
  config = cost.get_config(args.variant)
  config.data.train_datasets = 'synthetic'
  config.data.roots.synthetic = root
  config.text.path = (
      ''  # the bundled tokenizer; the vocabulary does not change the speed
  )
  config.train.batch_size = args.batch_size
  iterator = pairs.make_train_iterator(config)
  for _ in range(3):  # warm-up: graph, thread pools, page cache
    next(iterator)
  start, cpu = time.perf_counter(), time.process_time()
  for _ in range(args.batches):
    next(iterator)
  elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
  stats = iterator.stats()
  del iterator
  gc.collect()
  pairs_done = args.batches * args.batch_size
  return pairs_done / elapsed, cpu / pairs_done, stats


def _median(values):
  return float(sorted(values)[len(values) // 2])


def run(args) -> dict:
  """Interleaved rounds of (decode 1 thread, decode N threads, pipeline); medians.

  Interleaving keeps the comparison fair when other work shares the CPUs.
  """
  root = args.root
  if not root:
    width, height = (int(v) for v in args.size.lower().split('x'))
    root = os.path.join(
        tempfile.gettempdir(),
        f'cost_bench_{width}x{height}_{args.num_videos}' f'x{args.frames}',
    )
    synthetic.generate(
        root,
        'vlsot500',
        args.num_videos,
        0,
        frames=args.frames,
        size=(width, height),
    )
  frames, sizes = _frames(root)
  seconds = 1.0 if args.quick else 3.0
  decode_rate(frames, 1, 0.0)  # warm the page cache
  keys = (
      'single',
      'threaded',
      'pipeline',
      'ratio',
      'decode_cpu',
      'pipeline_cpu',
  )
  rounds = {k: [] for k in keys}
  for _ in range(args.rounds):
    rounds['single'].append(decode_rate(frames, 1, seconds)[0])
    threaded, decode_cpu = decode_rate(frames, args.threads, seconds)
    pairs_per_s, pipeline_cpu, stats = pipeline_rate(root, args)
    for key, value in (
        ('threaded', threaded),
        ('pipeline', pairs_per_s),
        ('ratio', pairs_per_s / (threaded / 2)),
        ('decode_cpu', 2e3 * decode_cpu),
        ('pipeline_cpu', 1e3 * pipeline_cpu),
    ):
      rounds[key].append(value)
  med = {k: _median(v) for k, v in rounds.items()}
  return {
      'root': root,
      'frame_sizes': [f'{w}x{h}' for w, h in sizes],
      'num_frames': len(frames),
      'threads': args.threads,
      'cpus': os.cpu_count(),
      'rounds': args.rounds,
      'decode_fps_1_thread': med['single'],
      'decode_fps_threaded': med['threaded'],
      'bound_pairs_per_s_1_thread': med['single'] / 2,
      'bound_pairs_per_s': med['threaded'] / 2,
      'pipeline_pairs_per_s': med['pipeline'],
      'ratio_vs_bound': med['ratio'],
      'ratio_per_round': [round(r, 3) for r in rounds['ratio']],
      'decode_cpu_ms_per_pair': med['decode_cpu'],
      'pipeline_cpu_ms_per_pair': med['pipeline_cpu'],
      'cpu_ratio': med['decode_cpu'] / med['pipeline_cpu'],
      'batch_size': args.batch_size,
      'variant': args.variant,
      'batches_timed': args.batches,
      **stats,
  }


def main(argv=None) -> int:
  args = _parse(argv)
  r = run(args)
  print(
      f"frames: {r['num_frames']} at {', '.join(r['frame_sizes'])}; {r['cpus']} CPUs; "
      f"medians of {r['rounds']} interleaved rounds"
  )
  print(
      f"cv2 decode, 1 thread:  {r['decode_fps_1_thread']:8.1f} frames/s -> bound "
      f"{r['bound_pairs_per_s_1_thread']:7.1f} pairs/s"
  )
  print(
      f"cv2 decode, {r['threads']} threads: {r['decode_fps_threaded']:8.1f} frames/s -> bound "
      f"{r['bound_pairs_per_s']:7.1f} pairs/s"
  )
  print(
      f"pipeline ({r['variant']} crops, batch {r['batch_size']}): "
      f"{r['pipeline_pairs_per_s']:7.1f} pairs/s; ratio to the {r['threads']}-thread bound "
      f"{r['ratio_vs_bound']:.2f}x (per round {r['ratio_per_round']})"
  )
  print(
      f"CPU per pair: decode {r['decode_cpu_ms_per_pair']:.2f} ms, pipeline "
      f"{r['pipeline_cpu_ms_per_pair']:.2f} ms -> {r['cpu_ratio']:.2f}x (less sensitive to other load)"
  )
  print(json.dumps(r))
  return 0


if __name__ == '__main__':
  sys.exit(main())
