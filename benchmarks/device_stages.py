"""The device check's stages, each run in its own process by device_check.py.

  python -m benchmarks.device_stages STAGE SETTINGS.json OUT.json DEADLINE

A fresh process per stage gives each its own peak-memory figure and lets the
driver kill a stage that overruns. Every stage records its items (one
measurement each) into OUT.json as it goes, so what finished survives a
timeout; an item that runs out of memory or fails is recorded with its status
and the next item runs. DEADLINE (Unix time) is when the driver kills the
process: an item that would likely not finish by then is skipped.
"""

import json
import os
import resource
import sys
import time
import traceback

from benchmarks import portable

# Before the imports below: configs/cost.py imports ml_collections, which
# the bare accelerator image lacks (a stand-in is installed then).
CONFIG_DICT = portable.install_config_dict()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import device_torch  # noqa: E402
from benchmarks import flops as flops_lib  # noqa: E402
from benchmarks import tracker_speed as ts  # noqa: E402
from benchmarks import train_step as tsb  # noqa: E402
from benchmarks.timing import summary  # noqa: E402
from cost_jax.models import factory  # noqa: E402

MB = 1e6


class Stage:
  """A stage's results (`out`), saved to its file after every item."""

  def __init__(self, path, deadline):
    self.path, self.deadline, self.longest = path, deadline, 0.0
    self.out = {'items': {}}

  def save(self):
    tmp = self.path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(self.out, f, indent=1, default=str)
    os.replace(tmp, self.path)

  def item(self, key, fn):
    """fn() -> dict into out['items'][key] with a status; None if not ok."""
    left = self.deadline - time.time()
    if left < 1.2 * self.longest + 2:
      self.out['items'][key] = {
          'status': 'skipped',
          'reason': f'{left:.0f} s left to this stage',
      }
      self.save()
      return None
    start = time.time()
    try:
      result = dict(fn(), status='ok')
    except Exception as e:  # pylint: disable=broad-except
      text = f'{type(e).__name__}: {e}'
      result = {
          'status': 'oom' if portable.is_oom(text) else 'error',
          'reason': text.strip().splitlines()[0][:300],
      }
      traceback.print_exc()
      device_torch.release_memory()
    result['wall_s'] = time.time() - start
    self.longest = max(self.longest, result['wall_s'])
    self.out['items'][key] = result
    self.save()
    print(f'  {key}: {result["status"]} ({result["wall_s"]:.1f} s)', flush=True)
    return result if result['status'] == 'ok' else None


# --- device facts -----------------------------------------------------------
def memory_stats():
  stats = jax.local_devices()[0].memory_stats() or {}
  return {k: stats.get(k) for k in ('peak_bytes_in_use', 'bytes_limit')}


def peak_memory():
  """Device peak bytes so far in this process (None on CPU) and host RSS."""
  return {
      'device_peak_bytes': memory_stats()['peak_bytes_in_use'],
      'host_peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
      * 1024,
  }


def compiled_stats(compiled):
  """XLA's cost and memory analyses of a compiled executable."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # Older JAX: one dict per device.
    cost = cost[0]
  out = {
      'gflop': (cost or {}).get('flops', 0.0) / 1e9,
      'mb_accessed': (cost or {}).get('bytes accessed', 0.0) / MB,
  }
  mem = compiled.memory_analysis()
  if mem is not None:
    total = (
        mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        - mem.alias_size_in_bytes
        + mem.temp_size_in_bytes
    )
    out.update(
        argument_bytes=mem.argument_size_in_bytes,
        temp_bytes=mem.temp_size_in_bytes,
        total_bytes=total,
    )
  return out


def machine():
  dev = jax.devices()[0]
  info = {
      'platform': dev.platform,
      'device_kind': dev.device_kind,
      'device_count': jax.device_count(),
      'jax': jax.__version__,
      'python': sys.version.split()[0],
      'cpu_count': os.cpu_count(),
      'config_dict': CONFIG_DICT,
      'bytes_limit': memory_stats()['bytes_limit'],
  }
  info.update(device_torch.describe(dev.platform))
  return info


# --- stages -----------------------------------------------------------------
def make_config(settings, model, dtype='float32'):
  config = ts.make_config(model, dtype)
  note = portable.ensure_text_folder(
      config, os.path.join(settings['workdir'], 'text_config')
  )
  return config, note


def cost(settings, stage):
  """Machine facts and XLA's (unoptimised) count of each model's frame step."""
  stage.out['machine'] = machine()
  for model in settings['models']:

    def count(model=model):
      config, note = make_config(settings, model)
      net, spec = factory.create_model(config, shapes_only=True)
      fn, args = flops_lib.stage_functions(spec)[
          'per frame: whole step (track)'
      ]
      flop, nbytes = flops_lib.cost_of(
          net, factory.variable_shapes(net, spec), fn, args
      )
      return {'gflop': flop / 1e9, 'mb_accessed': nbytes / MB, 'text': note}

    stage.item(model, count)


def parity(settings, stage):
  """JAX vs the reference on this device; bf16 vs f32 on each side."""
  for model in settings['models']:
    config, _ = make_config(settings, model)
    stage.item(
        model,
        lambda config=config: device_torch.parity(
            config, settings['parity_batch']
        ),
    )


def step_args(engine, batch):
  """Inputs of the jitted frame step for `batch` crops (random content)."""
  spec = engine.spec
  rng = np.random.default_rng(0)
  z = rng.integers(
      0, 255, (1, spec.template_size, spec.template_size, 3), dtype=np.uint8
  )
  template, text = engine.encode(z, ts.random_tokens(spec))
  template, text = engine.batch_caches(template, text, batch)
  crops = rng.integers(
      0, 255, (batch, spec.search_size, spec.search_size, 3), dtype=np.uint8
  )
  geometry = np.tile(
      np.array([[320, 240, 100, 640, 480]], np.float32), (batch, 1)
  )
  return engine.variables, crops, template, text, geometry


def track_jax(settings, stage, dtype):
  """Tracker.track single stream, then one step over B crops, B ascending."""
  config, note = make_config(settings, settings['track_model'], dtype)
  engine = ts.make_engine(config)
  frames, boxes = ts.moving_square(
      settings['frames'] + 1, tuple(settings['image'])
  )
  stage.out.update(model=settings['track_model'], dtype=dtype, text=note)
  repeats = settings['repeats']
  stage.item(
      'encoders', lambda: ts.time_encoders(engine, frames[0], boxes[0], repeats)
  )
  stage.item(
      'single',
      lambda: dict(
          ts.time_single(engine, frames, boxes, repeats), **peak_memory()
      ),
  )
  stage.item(
      'step_b1_compiled',
      lambda: compiled_stats(
          engine.step.lower(*step_args(engine, 1)).compile()
      ),
  )
  for b in settings['batches']:
    stage.item(
        f'batch_{b}',
        lambda b=b: ts.time_batched(engine, b, settings['steps'], repeats),
    )


def track_torch(settings, stage):
  """The reference tracker, f32 then bf16 autocast, on the torch device."""
  config, note = make_config(settings, settings['track_model'])
  stage.out.update(model=settings['track_model'], text=note)
  device_torch.track(config, settings, stage)


def jax_train_step(settings, model, dtype, batch=None):
  config, note = make_config(settings, model, dtype)
  config.train.frozen = ''  # Every group trainable.
  if batch:
    config.train.batch_size = batch
  step, runner = tsb.jax_step(config, ts.random_variables)
  return config, note, step, runner


def time_train(settings, step, runner, batch):
  """Compile, time and analyse one JAX train step (pairs/s, memory)."""
  start = time.perf_counter()
  jax.block_until_ready(step())
  compile_s = time.perf_counter() - start
  times = tsb.time_repeats(
      step,
      jax.block_until_ready,
      settings['train_steps'],
      settings['train_warmup'],
      settings['train_repeats'],
  )
  out = {
      'batch': batch,
      'devices': runner.num_devices,
      'compile_s': compile_s,
      'step_s': summary(times),
      'pairs_s': batch / summary(times)['median'],
      **peak_memory(),
  }
  # The runner keeps the executable it compiled on its first step.
  compiled = getattr(runner, '_compiled', None)
  if compiled is not None:
    out['compiled'] = compiled_stats(compiled)
  return out


def train_jax(settings, stage, dtype):
  """The train step at the config's batch, every group trainable."""
  model = settings['train_model']

  def run():
    config, note, step, runner = jax_train_step(
        settings, model, dtype, settings.get('train_batch')
    )
    stage.out.update(model=model, dtype=dtype, text=note)
    return time_train(settings, step, runner, config.train.batch_size)

  stage.item('paper_batch', run)


def train_torch(settings, stage):
  config, note = make_config(settings, settings['train_model'])
  config.train.frozen = ''
  if settings.get('train_batch'):
    config.train.batch_size = settings['train_batch']
  stage.out.update(model=settings['train_model'], text=note)
  device_torch.train(config, settings, stage)


def predict_batch(points, state_bytes, limit, devices):
  """Largest batch whose compiled footprint stays under 90 % of `limit`.

  points: [(batch, bytes)]. With one point the fixed part is the train state
  (parameters, optimizer moments): the rest is counted per pair, which
  overestimates the per-pair cost and so errs small. Two or more points:
  a straight line through the two largest.
  """
  points = sorted(points)
  if len(points) == 1:
    ((b0, m0),) = points
    fixed, per_pair = state_bytes, (m0 - state_bytes) / b0
  else:
    (b0, m0), (b1, m1) = points[-2:]
    per_pair = (m1 - m0) / (b1 - b0)
    fixed = m0 - per_pair * b0
  if per_pair <= 0:
    return None
  batch = int((0.9 * limit - fixed) / per_pair)
  return batch - batch % devices if batch >= devices else None


def train_max_batch(settings, stage):
  """Largest f32 train batch that fits under the device's memory.

  Predicted from XLA's memory analysis of the step at the paper batch
  (settings['train_point'], from train_jax_float32, else measured here),
  then run to verify; each further round refits through the two largest
  batches run, or tries 20 % smaller after an OOM
  (settings['max_batch_rounds'] rounds).
  """
  limit = settings.get('memory_limit_bytes') or memory_stats()['bytes_limit']
  if not limit:
    stage.out['note'] = 'no device memory limit known (CPU): not searched'
    return
  model, known = settings['train_model'], settings.get('train_point')

  quick = dict(settings, train_steps=2, train_warmup=0, train_repeats=1)

  def run(batch):
    return lambda: time_train(
        quick, *jax_train_step(settings, model, 'float32', batch)[2:], batch
    )

  if not known:
    batch = (
        settings.get('train_batch')
        or make_config(settings, model)[0].train.batch_size
    )
    known = stage.item('paper_batch', run(batch))
    if not known or 'compiled' not in known:
      return
    known = dict(known['compiled'], batch=batch, devices=known['devices'])
  points = [(known['batch'], known['total_bytes'])]
  devices, tried, failed = known['devices'], [], None
  stage.out.update(limit_bytes=limit, points=points, tried=tried)
  batch = predict_batch(points, known['argument_bytes'], limit, devices)
  stage.out['predicted'] = batch
  for round_ in range(settings['max_batch_rounds']):
    if failed and batch:  # Below the smallest batch that did not fit.
      batch = min(batch, int(failed * 0.8) // devices * devices)
    if not batch or batch <= max(b for b, _ in points):
      break
    result = stage.item(f'round_{round_}', run(batch))
    tried.append((batch, stage.out['items'][f'round_{round_}']['status']))
    if result is None:
      failed = min(failed or batch, batch)
      continue
    stage.out['verified'] = batch
    points.append((batch, result['compiled']['total_bytes']))
    batch = predict_batch(points, known['argument_bytes'], limit, devices)
    stage.out['predicted'] = batch
  stage.save()


STAGES = {
    'cost': cost,
    'parity': parity,
    'track_jax_float32': lambda s, st: track_jax(s, st, 'float32'),
    'track_jax_bfloat16': lambda s, st: track_jax(s, st, 'bfloat16'),
    'track_torch': track_torch,
    'train_jax_float32': lambda s, st: train_jax(s, st, 'float32'),
    'train_jax_bfloat16': lambda s, st: train_jax(s, st, 'bfloat16'),
    'train_torch': train_torch,
    'train_max_batch': train_max_batch,
}


def configure_jax(settings, stage_name):
  cache = os.path.join(settings['workdir'], 'xla_cache')
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  if stage_name != 'parity' and not settings['tf32']:
    jax.config.update('jax_default_matmul_precision', 'highest')


def main(argv):
  name, settings_path, out_path, deadline = argv
  with open(settings_path) as f:
    settings = json.load(f)
  configure_jax(settings, name)
  stage = Stage(out_path, float(deadline))
  stage.save()
  STAGES[name](settings, stage)
  stage.save()
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
