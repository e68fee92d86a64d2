"""Train-step speed: JAX (f32, bf16 compute) vs the PyTorch reference.

  python -m benchmarks.train_step                  # smoke and demo, this CPU
  python -m benchmarks.train_step --quick          # CI-sized: smoke, 1 repeat
  python -m benchmarks.train_step --configs=paper --repeats=3   # on a GPU

Times the full training step of cost_jax.train_step (forward, losses,
backward, gradient pmean, AdamW with the config's groups and frozen parts)
on random pairs of the config's global batch over all local devices.
Compilation is timed separately; each repeat times `--steps` steps after
`--warmup` and the table shows the median ms/step with [min, max] over
repeats, pairs/s, and the speed-up over the PyTorch reference step timed in
the same run (torch_reference/: the same network, losses and AdamW groups
with the same frozen groups, same batch, eager f32). Weights are random:
speed does not depend on them. Do not run with JAX_DISABLE_MOST_OPTIMIZATIONS
(the tests set it).
"""

import argparse
import json
import os
import platform
import sys
import time

# Spin-waiting OpenMP threads make torch ~10x slower on a busy 2-core CPU
# (see tracker_speed.py); passive waiting is fair to it. Set before the
# imports below in case one of them loads the OpenMP runtime.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.timing import fmt, summary  # noqa: E402
from configs import cost  # noqa: E402
from cost_jax import optim  # noqa: E402
from cost_jax import train_step  # noqa: E402
from cost_jax.models import factory  # noqa: E402


def make_config(variant, dtype='float32'):
  config = cost.get_config(variant)
  config.model.dtype = dtype
  return config


def random_batch(config, vocab):
  return train_step.synthetic_batch(
      config, config.train.batch_size, np.random.default_rng(0), vocab
  )


def time_repeats(step, sync, steps, warmup, repeats):
  """Seconds per step of each repeat (after `warmup` untimed steps)."""
  for _ in range(warmup):
    sync(step())
  per_step = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      out = step()
    sync(out)
    per_step.append((time.perf_counter() - start) / steps)
  return per_step


def jax_step(config, make_variables=None):
  """(step() -> metrics, runner): the JAX train step on one random batch.

  make_variables(model, spec) gives the weights; default: the model's init.
  """
  setup = train_step.setup(config)
  runner = setup.runner
  train_step.check_global_batch(
      config.train.batch_size, runner.num_devices, jax.process_count()
  )
  if make_variables is None:
    variables = factory.init_variables(
        setup.model, setup.spec, jax.random.key(0)
    )
  else:
    variables = make_variables(setup.model, setup.spec)
  holder = {
      'state': runner.put_state(
          train_step.state_from_variables(
              variables, setup.tx, runner.replicated
          )
      )
  }
  vocab = setup.spec.bert.vocab_size if setup.spec.language else 2
  batch = runner.put_batch(random_batch(config, vocab))

  def step():
    holder['state'], metrics = runner.step(holder['state'], batch)
    return metrics

  return step, runner


def jax_step_times(config, steps, warmup, repeats):
  """(compile seconds, [seconds per step], devices, last metrics)."""
  step, runner = jax_step(config)
  start = time.perf_counter()
  metrics = jax.block_until_ready(step())
  compile_s = time.perf_counter() - start
  times = time_repeats(step, jax.block_until_ready, steps, warmup, repeats)
  return compile_s, times, runner.num_devices, runner.metrics(metrics)


def torch_step_times(config, steps, warmup, repeats, device='cpu', amp=False):
  """[seconds per step] of the PyTorch reference step, or None without torch.

  device: a torch device ('cuda' on a GPU); amp: bf16 autocast (no loss
  scaling: bf16 has f32's exponent range).
  """
  try:
    # Lazy: torch (optional, heavy), which torch_reference also needs.
    import torch
    import torch_reference
    from torch_reference import losses as ref_losses
  except ImportError:
    return None
  text = factory.text_model_path(config) if config.model.language else None
  model = torch_reference.build_model(config, text).train().to(device)
  frozen = optim.frozen_components(config)
  lrs = optim.learning_rates(config)
  groups = {}
  for name, param in model.named_parameters():
    group = optim.group_of(name.split('.')[0], frozen)
    if group == optim.FROZEN:
      param.requires_grad_(False)
    else:
      groups.setdefault(group, []).append(param)
  optimizer = torch.optim.AdamW(
      [{'params': p, 'lr': lrs[g]} for g, p in groups.items()],
      weight_decay=config.train.weight_decay,
  )
  vocab = model.text_encoder.config.vocab_size if text else 2
  batch = random_batch(config, vocab)
  put = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(device)
  inputs = (
      put(batch['template'].transpose(0, 3, 1, 2)),
      put(batch['search'].transpose(0, 3, 1, 2)),
      put(batch['text_ids']).long(),
      put(batch['text_mask']).long(),
  )
  box, visible = put(batch['search_box']), put(batch['visible'])
  device_type = torch.device(device).type

  def step():
    optimizer.zero_grad()
    with torch.autocast(device_type, torch.bfloat16, enabled=amp):
      terms = ref_losses.compute_losses(model(*inputs), box, visible, config)
    terms['loss'].backward()
    optimizer.step()

  def sync(_):
    if device_type == 'cuda':
      torch.cuda.synchronize()

  return time_repeats(step, sync, steps, warmup, repeats)


def run(variant, dtypes, steps, warmup, repeats, with_torch):
  """Rows of one config: one per JAX dtype, then the PyTorch reference."""
  rows = []
  torch_times = (
      torch_step_times(make_config(variant), steps, warmup, repeats)
      if with_torch
      else None
  )
  for dtype in dtypes:
    config = make_config(variant, dtype)
    compile_s, times, devices, metrics = jax_step_times(
        config, steps, warmup, repeats
    )
    rows.append(
        {
            'config': variant,
            'impl': f'JAX {dtype}',
            'batch': config.train.batch_size,
            'devices': devices,
            'compile_s': compile_s,
            'step_s': summary(times),
            'loss': metrics['loss'],
        }
    )
  if torch_times:
    rows.append(
        {
            'config': variant,
            'impl': 'PyTorch f32 (eager)',
            'batch': rows[0]['batch'],
            'devices': 1,
            'compile_s': None,
            'step_s': summary(torch_times),
            'loss': None,
        }
    )
    for row in rows:
      row['speedup_vs_torch'] = (
          summary(torch_times)['median'] / row['step_s']['median']
      )
  return rows


def print_table(rows):
  print(
      f'{"config":>8} {"implementation":<20} {"batch":>5} {"compile s":>9} '
      f'{"ms/step median [min, max]":>28} {"pairs/s":>8} {"vs PyTorch":>10}'
  )
  for r in rows:
    compile_s = '' if r['compile_s'] is None else f'{r["compile_s"]:.1f}'
    ratio = r.get('speedup_vs_torch')
    print(
        f'{r["config"]:>8} {r["impl"]:<20} {r["batch"]:>5} {compile_s:>9} '
        f'{fmt(r["step_s"], 1000):>28} '
        f'{r["batch"] / r["step_s"]["median"]:>8.1f} '
        f'{"" if ratio is None else f"{ratio:.2f}x":>10}',
        flush=True,
    )


def main(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n')[0],
      epilog=__doc__.split('\n', 2)[2],
      formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument(
      '--configs',
      default='smoke,demo',
      help='comma-separated config variants (configs/cost.py)',
  )
  parser.add_argument(
      '--dtypes',
      default='float32,bfloat16',
      help='config.model.dtype values for JAX',
  )
  parser.add_argument('--steps', type=int, default=5, help='steps per repeat')
  parser.add_argument('--warmup', type=int, default=2, help='untimed steps')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument(
      '--torch',
      choices=('auto', 'off'),
      default='auto',
      help='time the PyTorch reference when importable',
  )
  parser.add_argument(
      '--quick',
      action='store_true',
      help='CI-sized: smoke, f32, 2 steps, 1 repeat',
  )
  parser.add_argument('--json', default='', help='also write the rows here')
  args = parser.parse_args(argv)
  if args.quick:
    args.configs, args.dtypes, args.steps, args.warmup, args.repeats = (
        'smoke',
        'float32',
        2,
        1,
        1,
    )
  print(
      f'machine: {platform.processor() or platform.machine()}, '
      f'{os.cpu_count()} CPUs; {jax.device_count()} x '
      f'{jax.devices()[0].device_kind}; jax {jax.__version__}',
      flush=True,
  )
  rows = []
  for variant in filter(None, args.configs.split(',')):
    rows += run(
        variant,
        args.dtypes.split(','),
        args.steps,
        args.warmup,
        args.repeats,
        args.torch == 'auto',
    )
  print_table(rows)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(rows, f, indent=2)
  return 0


if __name__ == '__main__':
  sys.exit(main())
