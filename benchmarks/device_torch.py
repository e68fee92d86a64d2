"""The PyTorch reference on the device check's device (torch_reference/).

Parity (weights converted through cost_jax.convert, TF32 off), tracking
(ReferenceTracker single stream and one batched step) and the train step,
f32 and bf16 autocast. Everything here imports torch lazily: without torch
the device check skips these columns.
"""

import dataclasses
import importlib.util
import time

import jax
import numpy as np

from benchmarks import timing
from benchmarks import tracker_speed as ts
from benchmarks import train_step as tsb
from cost_jax.models import cost as cost_lib
from cost_jax.models import factory
from cost_jax.tracking.engine import hanning_window

DTYPES = ('float32', 'bfloat16')


def _torch():
  # Lazy: torch (optional, heavy); without it these columns are skipped.
  import torch

  return torch


def describe(jax_platform):
  """{'torch': version or None, 'torch_device': 'cuda' | 'cpu' | None, ...}.

  torch runs on the platform JAX measures: CUDA beside a JAX GPU, the CPU
  beside a JAX CPU, nothing beside a TPU (no reference columns there).
  """
  try:
    torch = _torch()
    # Lazy: torch_reference needs torch (optional, heavy); a probe here.
    import torch_reference  # noqa: F401

    if importlib.util.find_spec('transformers') is None:
      raise ImportError('transformers (the reference BERT) is not installed')
  except Exception as e:  # pylint: disable=broad-except  (e.g. CUDA libs)
    return {
        'torch': None,
        'torch_device': None,
        'torch_note': f'{type(e).__name__}: {e}',
    }
  out = {'torch': torch.__version__, 'torch_device': None}
  if jax_platform == 'gpu' and torch.cuda.is_available():
    out.update(torch_device='cuda', torch_gpu=torch.cuda.get_device_name(0))
  elif jax_platform == 'cpu':
    out['torch_device'] = 'cpu'
  else:
    out['torch_note'] = f'no torch device beside JAX on {jax_platform}'
  return out


def device_of(settings):
  return settings['torch_device']


def set_tf32(allow):
  torch = _torch()
  torch.backends.cuda.matmul.allow_tf32 = allow
  torch.backends.cudnn.allow_tf32 = allow


def release_memory():
  try:
    torch = _torch()
  except ImportError:
    return
  if torch.cuda.is_available():
    torch.cuda.empty_cache()


def peak_bytes(device, reset=False):
  torch = _torch()
  if device != 'cuda':
    return None
  if reset:
    torch.cuda.reset_peak_memory_stats()
  return torch.cuda.max_memory_allocated()


def autocast(device, dtype):
  torch = _torch()
  return torch.autocast(
      torch.device(device).type, torch.bfloat16, enabled=dtype == 'bfloat16'
  )


def _float(tree):
  """Floating tensors of a dict (or a tensor) as float32."""
  if isinstance(tree, dict):
    return {k: _float(v) for k, v in tree.items()}
  return tree.float() if tree.is_floating_point() else tree


class Autocast:
  """The reference's tracking methods under autocast, outputs in float32
  (the host side reads them with numpy, which has no bf16)."""

  def __init__(self, model, device, dtype):
    self.model, self.device, self.dtype = model, device, dtype

  def eval(self):
    return self

  def to(self, _):
    return self

  def _run(self, method, *args):
    with autocast(self.device, self.dtype):
      return _float(getattr(self.model, method)(*args))

  def encode_template(self, z):
    return self._run('encode_template', z)

  def encode_text(self, ids, mask):
    return self._run('encode_text', ids, mask)

  def track(self, x, template, text):
    return self._run('track', x, template, text)


def build(config, spec, device, seed=0):
  """The reference with seeded random weights, in eval mode on `device`."""
  # Lazy: torch_reference imports torch (optional, heavy).
  from torch_reference import parity as parity_lib

  return parity_lib.build_pair(config, spec.bert, seed)[0].to(device)


# --- parity -------------------------------------------------------------------
def random_text(spec, batch, seed):
  """Token ids [CLS] w... [SEP] of random lengths (no tokenizer needed)."""
  rng = np.random.default_rng(seed)
  ids = np.zeros((batch, spec.text_len), np.int32)
  for row in ids:
    n = int(rng.integers(4, spec.text_len + 1))
    row[:n] = rng.integers(1000, spec.bert.vocab_size, n)
    row[0], row[n - 1] = 101, 102
  return ids, (ids > 0).astype(np.int32)


def parity(config, batch, seed=0):
  """max |diff| of logits and boxes: JAX vs reference (f32, TF32 off) and
  bf16 vs f32 on each side; the reference's weights converted to JAX."""
  torch = _torch()
  # Lazy: torch_reference imports torch (optional, heavy).
  from torch_reference import parity as parity_lib

  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  set_tf32(False)
  model, spec = factory.create_model(config)
  ref = build(config, spec, 'cpu', seed)
  variables = parity_lib.variables_from_torch(ref, model, spec)
  ref = ref.to(device)
  rng = np.random.default_rng(seed)
  z = parity_lib.images(rng, batch, spec.template_size)
  x = parity_lib.images(rng, batch, spec.search_size)
  ids, mask = random_text(spec, batch, seed)
  put = lambda a: a.to(device)
  args = (
      put(parity_lib.nchw(z)),
      put(parity_lib.nchw(x)),
      put(torch.from_numpy(ids).long()),
      put(torch.from_numpy(mask).long()),
  )
  outs = {}
  for dtype in DTYPES:
    with torch.no_grad(), autocast(device, dtype):
      outs[f'torch_{dtype}'] = {
          k: v.float().cpu().numpy() for k, v in ref(*args).items()
      }
    with jax.default_matmul_precision('highest'):
      net = cost_lib.COST(dataclasses.replace(spec, dtype=dtype))
      outs[f'jax_{dtype}'] = jax.device_get(
          jax.jit(net.apply)(variables, z, x, ids, mask)
      )
  pairs = {
      'jax_vs_torch_f32': ('jax_float32', 'torch_float32'),
      'jax_bf16_vs_f32': ('jax_bfloat16', 'jax_float32'),
      'torch_bf16_vs_f32': ('torch_bfloat16', 'torch_float32'),
  }
  result = {'device': device, 'batch': batch}
  for name, (a, b) in pairs.items():
    result[name] = {}
    for key in ('logits', 'boxes'):
      result[name][key] = parity_lib.diff(
          f'{name}/{key}', outs[a][key], outs[b][key]
      )[0]
  return result


# --- tracking -----------------------------------------------------------------
def _single(model, config, frames, boxes, repeats, device, tokens):
  """ReferenceTracker frames/s; the state is put back on the true box after
  every frame (as benchmarks/tracker_speed.py does for JAX)."""
  # Lazy: torch_reference imports torch (optional, heavy).
  from torch_reference import tracker as ref_tracker

  tracker = ref_tracker.ReferenceTracker(model, config, device)
  ids, mask = (tokens[0][0], tokens[1][0]) if tokens else (None, None)
  tracker.initialize(frames[0], boxes[0], ids, mask)
  start = time.perf_counter()
  tracker.track(frames[1])
  first_s = time.perf_counter() - start
  fps = []
  for _ in range(repeats):
    tracker.initialize(frames[0], boxes[0], ids, mask)
    elapsed = 0.0
    for frame, box in zip(frames[1:], boxes[1:]):
      start = time.perf_counter()
      tracker.track(frame)
      elapsed += time.perf_counter() - start
      tracker.center, tracker.size = box[:2] + box[2:] / 2, box[2:].copy()
    fps.append((len(frames) - 1) / elapsed)
  return {'compile_s': first_s, 'fps': timing.summary(fps)}


def _batched(model, config, spec, tokens, batch, steps, repeats, device):
  """Frames/s of one reference step over `batch` uint8 crops: copy in,
  network on cached features, window + argmax on the device, boxes out."""
  torch = _torch()
  window = torch.from_numpy(hanning_window(spec.grid_side)).float().to(device)
  wi = float(config.track.window_influence)
  z = torch.zeros(1, 3, spec.template_size, spec.template_size, device=device)
  template = model.encode_template(z)
  text = (
      model.encode_text(
          *(torch.from_numpy(t).long().to(device) for t in tokens)
      )
      if tokens
      else {}
  )
  expand = lambda v: v.expand(batch, *v.shape[1:]) if v.dim() == 3 else v
  template = {k: expand(v) for k, v in template.items()}
  text = {k: v.expand(batch, *v.shape[1:]) for k, v in text.items()}
  crops = np.random.default_rng(0).integers(
      0, 255, (batch, spec.search_size, spec.search_size, 3), dtype=np.uint8
  )
  rows = torch.arange(batch, device=device)

  def step():
    x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float()
    out = model.track(x, template, text)
    logits = out['logits']
    p = logits.softmax(-1)[..., 0] if logits.dim() == 3 else logits.sigmoid()
    best = (p * (1 - wi) + window * wi).argmax(-1)
    return out['boxes'][rows, best].cpu().numpy()

  first_s, fps = timing.rates(step, batch, steps, repeats)
  return {'compile_s': first_s, 'fps': timing.summary(fps)}


def track(config, settings, stage):
  """Items '<dtype>/single' and '<dtype>/batch_<B>' of the track_torch stage."""
  torch = _torch()
  device = device_of(settings)
  set_tf32(settings['tf32'])
  _, spec = factory.create_model(config, shapes_only=True)
  ref = build(config, spec, device)
  frames, boxes = ts.moving_square(
      settings['frames'] + 1, tuple(settings['image'])
  )
  tokens = ts.random_tokens(spec)
  for dtype in DTYPES:
    model = Autocast(ref, device, dtype)

    def single(model=model):
      peak_bytes(device, reset=True)
      with torch.no_grad():
        out = _single(
            model, config, frames, boxes, settings['repeats'], device, tokens
        )
      return dict(out, device_peak_bytes=peak_bytes(device))

    stage.item(f'{dtype}/single', single)
    for b in settings['batches']:

      def batched(b=b, model=model):
        with torch.no_grad():
          return _batched(
              model,
              config,
              spec,
              tokens,
              b,
              settings['steps'],
              settings['repeats'],
              device,
          )

      stage.item(f'{dtype}/batch_{b}', batched)


# --- training -----------------------------------------------------------------
def train(config, settings, stage):
  """Items 'float32' and 'bfloat16' (AMP: bf16 autocast) of train_torch."""
  device = device_of(settings)
  set_tf32(settings['tf32'])
  batch = config.train.batch_size
  for dtype in DTYPES:

    def run(dtype=dtype):
      peak_bytes(device, reset=True)
      times = tsb.torch_step_times(
          config,
          settings['train_steps'],
          settings['train_warmup'],
          settings['train_repeats'],
          device=device,
          amp=dtype == 'bfloat16',
      )
      step_s = timing.summary(times)
      return {
          'batch': batch,
          'step_s': step_s,
          'pairs_s': batch / step_s['median'],
          'device_peak_bytes': peak_bytes(device),
      }

    stage.item(dtype, run)
