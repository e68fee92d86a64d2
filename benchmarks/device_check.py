"""Everything a GPU/TPU must show, in one command within a time budget.

  python -m benchmarks.device_check --out=DIR            # on the accelerator
  python -m benchmarks.device_check --dry_run --out=DIR  # smoke config, CPU

Writes DIR/device_check.json, DIR/device_check.md (tables ready for
BENCHMARKS.md) and DIR/device_check.log (every stage's output). Stages, in
priority order, each in its own process (own peak memory, killed when it
overruns; what it finished is kept):

  cost                machine facts; XLA flop count of each model's frame step
  parity              JAX vs the PyTorch reference on the device, f32 with TF32
                      off on both sides, and bf16 vs f32 on each side; random
                      weights converted through cost_jax.convert
  track_jax_float32   Tracker.track single stream on 640x480 frames (crop,
                      copy, step, readback), then one step over B crops
  track_torch         the same with the reference, f32 then bf16 autocast
  track_jax_bfloat16  as track_jax_float32 with config.model.dtype=bfloat16
  train_jax_float32   the train step at the config's batch (paper: 14),
                      every group trainable; pairs/s, memory, XLA analyses
  train_torch         the reference step, f32 then AMP (bf16 autocast)
  train_jax_bfloat16  as train_jax_float32 in bf16
  train_max_batch     largest f32 train batch: predicted from XLA's memory
                      analysis, then run to verify

A stage starts only if enough of --budget_s is left (each gets at most its
share, see STAGE_SHARES), and --reserve_s is kept to write the report. Speed
figures are medians over repeats with [min, max]; compile time is separate.
With no GPU/TPU the CPU is measured and the report says so; without torch
(or beside a TPU) the PyTorch columns are skipped; an item that runs out of
memory is reported as 'oom' and the next one runs.

What must be installed: jax (+ its CUDA/TPU plugin), flax, optax, numpy,
opencv-python(-headless); for the PyTorch columns torch, transformers and
safetensors. No wheel needs to travel to the GPU image: TensorFlow, TFDS and
CLU are never imported; ml_collections is used when installed, else a
stand-in (benchmarks/portable.py); a missing text-model folder (the paper's
bert-base-uncased, the bundled MiniLM package) is replaced by the BERT-base
architecture (random weights, only shapes matter).

--dry_run: every stage on the CPU with the smoke config, few repeats and XLA
optimisations off (JAX_DISABLE_MOST_OPTIMIZATIONS): proves the script, its
numbers mean nothing.

JSON schema (device_check.json):
  schema        'cost-jax/device_check/1'
  created_utc, command, dry_run, budget_s, wall_s
  notes         [str]: no accelerator found, dry run, ...
  settings      the measured sizes: models, track_model, train_model,
                batches, frames, steps, repeats, image [W, H], train_steps,
                train_warmup, train_repeats, train_batch (null = config's),
                tf32 (bool: TF32 allowed for f32 speed), torch_device,
                parity_batch, max_batch_rounds, memory_limit_bytes,
                train_point (the f32 step's batch and XLA memory analysis,
                handed to train_max_batch), workdir (temporary, removed)
  machine       platform ('gpu'|'cpu'|'tpu'), device_kind, device_count,
                bytes_limit, jax, python, cpu_count, config_dict, torch
                (version|null), torch_device ('cuda'|'cpu'|null)
  peak          name, bf16, f32 (TFLOP/s; f32 = TF32 rate when tf32), tb_s,
                source ('table of known devices'|'flags'|...)
  stages        {name: {status: 'ok'|'partial'|'timeout'|'oom'|'error'|
                        'skipped', wall_s, cpu_s, timeout_s, reason,
                        items: {...}, + the stage's own keys}}; every item
                has status ('ok'|'oom'|'error'|'skipped'), wall_s, and a
                reason when not ok:
    cost              items {model: {gflop, mb_accessed, text}}; machine
    parity            items {model: {device, batch, jax_vs_torch_f32,
                      jax_bf16_vs_f32, torch_bf16_vs_f32: {logits, boxes}}}
                      (max |diff|)
    track_jax_<dtype> model, dtype; items encoders {template, text:
                      {compile_s, ms}}, single {compile_s, fps,
                      device_peak_bytes, host_peak_rss_bytes},
                      step_b1_compiled {gflop, mb_accessed, argument_bytes,
                      temp_bytes, total_bytes}, batch_<B> {compile_s, fps}
    track_torch       items <dtype>/single {compile_s, fps,
                      device_peak_bytes}, <dtype>/batch_<B> {compile_s, fps}
    train_jax_<dtype> items paper_batch {batch, devices, compile_s, step_s,
                      pairs_s, device_peak_bytes, host_peak_rss_bytes,
                      compiled {gflop, mb_accessed, ..., total_bytes}}
    train_torch       items <dtype> {batch, step_s, pairs_s,
                      device_peak_bytes}
    train_max_batch   limit_bytes, points [[batch, XLA bytes]], predicted,
                      verified, tried [[batch, status]], note; items
                      round_<i> (and paper_batch when no train_point), as
                      train_jax's paper_batch
                fps, ms, step_s: {median, min, max}; bytes are bytes; a
                device_peak_bytes of null means no device memory statistics
                (CPU).
  utilisation   [{run, per_s, gflop_each, achieved_tflops, peak_tflops,
                  fraction}]
"""

import argparse
import datetime
import json
import os
import shlex
import shutil
import sys
import tempfile
import time

from benchmarks import device_report
from benchmarks import device_process

# Largest share of --budget_s each stage may take, in priority order.
STAGE_SHARES = {
    'cost': 0.1,
    'parity': 0.2,
    'track_jax_float32': 0.22,
    'track_torch': 0.12,
    'track_jax_bfloat16': 0.18,
    'train_jax_float32': 0.22,
    'train_torch': 0.12,
    'train_jax_bfloat16': 0.18,
    'train_max_batch': 0.22,
}
TORCH_STAGES = ('track_torch', 'train_torch')
MIN_STAGE_S = 15.0
DRY_RUN = {
    'models': 'smoke,smoke+no_lb',
    'track_model': 'smoke',
    'train_model': 'smoke',
    'batches': '1,4',
    'frames': 4,
    'steps': 2,
    'repeats': 2,
    'train_steps': 1,
    'train_warmup': 0,
    'train_repeats': 1,
    'parity_batch': 1,
    'max_batch_rounds': 0,
    'memory_limit_gb': 0.6,
    'budget_s': 110.0,
    'reserve_s': 5.0,
}


class UserError(Exception):
  pass


def parse_args(argv=None):
  ap = argparse.ArgumentParser(
      description=__doc__.split('\n')[0],
      epilog=__doc__.split('\n', 2)[2],
      formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  ap.add_argument('--out', required=True, help='folder for the report')
  ap.add_argument(
      '--budget_s',
      type=float,
      default=420.0,
      help='wall-clock budget of the whole command',
  )
  ap.add_argument(
      '--reserve_s',
      type=float,
      default=15.0,
      help='part of the budget kept for writing the report',
  )
  ap.add_argument(
      '--dry_run',
      action='store_true',
      help='every stage on the CPU with the smoke config',
  )
  ap.add_argument(
      '--stages',
      default=','.join(STAGE_SHARES),
      help='stages to run (comma separated)',
  )
  ap.add_argument(
      '--models',
      default='paper,paper+no_lb',
      help="parity and flop-count models; '+' joins variant parts",
  )
  ap.add_argument('--track_model', default='paper')
  ap.add_argument('--train_model', default='paper')
  ap.add_argument(
      '--batches', default='1,8,64,256', help='batched tracking sizes'
  )
  ap.add_argument(
      '--frames', type=int, default=60, help='frames per single-stream repeat'
  )
  ap.add_argument(
      '--steps', type=int, default=10, help='batched tracking steps per repeat'
  )
  ap.add_argument('--repeats', type=int, default=5)
  ap.add_argument('--image', default='640x480', help='frame size WxH')
  ap.add_argument('--train_steps', type=int, default=5)
  ap.add_argument('--train_warmup', type=int, default=2)
  ap.add_argument('--train_repeats', type=int, default=3)
  ap.add_argument(
      '--train_batch', type=int, default=0, help="0 = the config's (paper: 14)"
  )
  ap.add_argument('--parity_batch', type=int, default=2)
  ap.add_argument(
      '--max_batch_rounds',
      type=int,
      default=2,
      help='verification runs of the largest train batch',
  )
  ap.add_argument(
      '--memory_limit_gb',
      type=float,
      default=0.0,
      help="device memory for the batch search (0 = the device's)",
  )
  ap.add_argument(
      '--tf32',
      choices=('on', 'off'),
      default='on',
      help='TF32 for the f32 speed columns, both frameworks '
      '(parity always runs with it off)',
  )
  ap.add_argument('--torch', choices=('auto', 'off'), default='auto')
  ap.add_argument('--peak_tflops_bf16', type=float, default=None)
  ap.add_argument(
      '--peak_tflops_f32',
      type=float,
      default=None,
      help='the f32 matmul peak as run (TF32 rate when --tf32=on)',
  )
  ap.add_argument('--peak_tb_s', type=float, default=None)
  args = ap.parse_args(argv)
  if args.dry_run:
    explicit = {a.split('=')[0][2:] for a in (argv or sys.argv[1:])}
    for key, value in DRY_RUN.items():
      if key not in explicit:
        setattr(args, key, value)
  unknown = set(filter(None, args.stages.split(','))) - set(STAGE_SHARES)
  if unknown:
    raise UserError(
        f'unknown stage(s) {sorted(unknown)}. Fix: choose from '
        f'{",".join(STAGE_SHARES)}'
    )
  if args.budget_s <= args.reserve_s + MIN_STAGE_S:
    raise UserError(
        f'--budget_s={args.budget_s:g} leaves no time for a stage'
        f'. Fix: give more than {args.reserve_s + MIN_STAGE_S:g}'
    )
  return args


def settings_of(args, workdir):
  ints = lambda s: [int(v) for v in s.split(',') if v]
  return {
      'models': [m.replace('+', ',') for m in args.models.split(',') if m],
      'track_model': args.track_model.replace('+', ','),
      'train_model': args.train_model.replace('+', ','),
      'batches': ints(args.batches),
      'frames': args.frames,
      'steps': args.steps,
      'repeats': args.repeats,
      'image': ints(args.image.lower().replace('x', ',')),
      'train_steps': args.train_steps,
      'train_warmup': args.train_warmup,
      'train_repeats': args.train_repeats,
      'train_batch': args.train_batch or None,
      'parity_batch': args.parity_batch,
      'max_batch_rounds': args.max_batch_rounds,
      'memory_limit_bytes': int(args.memory_limit_gb * 1e9) or None,
      'tf32': args.tf32 == 'on',
      'torch_device': None,
      'workdir': workdir,
  }


def skip_reason(name, args, report, left):
  """Why a stage does not run ('' when it does); 'cost' always runs."""
  if name != 'cost' and name not in args.stages.split(','):
    return 'not asked for (--stages)'
  if name in TORCH_STAGES + ('parity',) and args.torch == 'off':
    return '--torch=off'
  if name == 'parity' and not report['machine'].get('torch'):
    return 'torch or transformers not importable'
  if name in TORCH_STAGES and not report['settings']['torch_device']:
    return 'no PyTorch device beside JAX here'
  if left < MIN_STAGE_S:
    return f'budget: {left:.0f} s left'
  return ''


def train_point(record):
  """The f32 step's batch and XLA memory analysis, for train_max_batch."""
  item = record.get('items', {}).get('paper_batch') or {}
  if item.get('status') != 'ok' or 'compiled' not in item:
    return None
  return dict(item['compiled'], batch=item['batch'], devices=item['devices'])


def new_report(args, settings):
  return {
      'schema': 'cost-jax/device_check/1',
      'created_utc': datetime.datetime.now(datetime.timezone.utc).strftime(
          '%Y-%m-%d %H:%M UTC'
      ),
      'command': 'python -m benchmarks.device_check '
      + ' '.join(shlex.quote(a) for a in sys.argv[1:]),
      'dry_run': args.dry_run,
      'budget_s': args.budget_s,
      'wall_s': 0.0,
      'notes': [],
      'settings': settings,
      'machine': {},
      'peak': {},
      'stages': {},
      'utilisation': [],
  }


def take_machine(report, args, record):
  """Fills machine, notes, peak and the torch device from the cost stage."""
  machine = record.get('machine') or {}
  report['machine'] = machine
  settings = report['settings']
  settings['torch_device'] = machine.get('torch_device')
  if args.dry_run:
    report['notes'].append(
        'Dry run (smoke config, CPU, XLA optimisations '
        'off): the figures are not measurements.'
    )
  elif machine.get('platform') == 'cpu':
    report['notes'].append('No GPU or TPU found: these are CPU figures.')


def finish(report, args, start):
  report['wall_s'] = time.time() - start
  report['peak'] = device_report.peak_for(
      report['machine'].get('device_kind'),
      report['settings']['tf32'],
      args.peak_tflops_bf16,
      args.peak_tflops_f32,
      args.peak_tb_s,
  )
  report['utilisation'] = device_report.utilisation(report)
  text = device_report.markdown(report)
  for name, content in (
      ('device_check.json', json.dumps(report, indent=1, default=str)),
      ('device_check.md', text),
  ):
    tmp = os.path.join(args.out, name + '.tmp')
    with open(tmp, 'w') as f:
      f.write(content)
    os.replace(tmp, os.path.join(args.out, name))
  return text


def run(args):
  start = time.time()
  os.makedirs(args.out, exist_ok=True)
  workdir = tempfile.mkdtemp(prefix='device_check_')
  settings = settings_of(args, workdir)
  report = new_report(args, settings)
  env = device_process.stage_env(args.dry_run)
  end = start + args.budget_s - args.reserve_s
  with open(os.path.join(args.out, 'device_check.log'), 'w') as log:
    for name, share in STAGE_SHARES.items():
      left = end - time.time()
      reason = skip_reason(name, args, report, left)
      if reason:
        report['stages'][name] = {
            'status': 'skipped',
            'reason': reason,
            'items': {},
        }
      else:
        # A dry run must reach every stage: only the whole budget limits it.
        timeout = left if args.dry_run else min(share * args.budget_s, left)
        report['stages'][name] = device_process.run_stage(
            name, settings, timeout, env, log
        )
      stage = report['stages'][name]
      print(
          f'{name:<20} {stage["status"]:<8} {stage.get("wall_s", 0):6.1f} s'
          f' (CPU {stage.get("cpu_s", 0):6.1f} s)  {stage.get("reason", "")}',
          flush=True,
      )
      if name == 'cost':
        take_machine(report, args, stage)
        for note in report['notes']:
          print(note, flush=True)
      if name == 'train_jax_float32':
        settings['train_point'] = train_point(stage)
      finish(report, args, start)
  text = finish(report, args, start)
  shutil.rmtree(workdir, ignore_errors=True)
  print('\n' + text)
  print(
      f'wrote {args.out}/device_check.json, .md and .log '
      f'({report["wall_s"]:.0f} s)'
  )
  return 0


def main(argv=None):
  try:
    args = parse_args(argv)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return run(args)


if __name__ == '__main__':
  sys.exit(main())
