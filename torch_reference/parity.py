"""Bridges the reference and the JAX model for parity tests and benchmarks.

Imports both torch and JAX (the reference modules themselves need no JAX).
Weights always travel through the converters of cost_jax/convert.
"""

import contextlib
import dataclasses

import cv2
import numpy as np
import torch

from cost_jax import text as text_lib
from cost_jax.convert import matching, names
from cost_jax.models import factory
from cost_jax.models.spec import BertConfig
from cost_jax.models.cost import COST
from cost_jax.models.spec import spec_from_config
import torch_reference

try:
  from transformers.initialization import no_init_weights
except ImportError:  # transformers < 5 has no such module.
  no_init_weights = None


# A small BERT with the real vocabulary (real sentences, real ids).
SMALL_BERT = BertConfig(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
)
SENTENCES = [
    'the red triangle moving left',
    'a small white drone flying above the trees near a bird',
]


def images(rng, batch, size):
  """Smooth random scenes with a few rectangles and sensor noise (uint8)."""
  out = []
  for _ in range(batch):
    coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):
      x0, y0 = rng.integers(0, size - 8, 2)
      w, h = rng.integers(4, size // 3, 2)
      img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
    out.append(img + rng.normal(0, 8, img.shape))
  return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def inputs(spec, batch=2, seed=0):
  """(template, search, ids, mask): realistic crops and real descriptions."""
  rng = np.random.default_rng(seed)
  tok = text_lib.Tokenizer(text_lib.bundled_minilm_path(), spec.text_len)
  ids, mask = tok.encode_batch(SENTENCES[:batch])
  return (
      images(rng, batch, spec.template_size),
      images(rng, batch, spec.search_size),
      ids,
      mask,
  )


def build_pair(config, bert: BertConfig = None, seed=0):
  """(torch reference with seeded random weights, JAX model, spec)."""
  bert = bert if config.model.language else None
  with _no_default_init():  # randomize_ sets every tensor anyway.
    ref = torch_reference.build_model(
        config, dataclasses.asdict(bert) if bert else None
    )
  torch_reference.randomize_(ref, seed)
  spec = spec_from_config(config, bert)
  return ref.eval(), COST(spec), spec


@contextlib.contextmanager
def torch_threads(num=1):
  """Runs torch on `num` threads (1: no OpenMP waits on a busy 2-core CI)."""
  before = torch.get_num_threads()
  torch.set_num_threads(num)
  try:
    yield
  finally:
    torch.set_num_threads(before)


def _no_default_init():
  if no_init_weights is None:  # Older transformers: default init (slower).
    return contextlib.nullcontext()
  return no_init_weights()


def to_numpy_state(module):
  return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def variables_from_torch(ref, model, spec):
  """The reference's weights converted into the JAX model's variables
  (numpy leaves; jit moves them to the device)."""
  shapes = {
      p: leaf.shape
      for p, leaf in names.flatten(factory.variable_shapes(model, spec)).items()
  }
  flat, report = matching.match(
      to_numpy_state(ref), names.table(shapes), 'the reference state_dict'
  )
  report.check()
  return names.unflatten(flat)


def load_into_torch(ref, variables):
  """Our variables exported into the reference (strict)."""
  state = matching.export(names.flatten(variables))
  ref.load_state_dict(
      {k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True
  )
  return ref


def nchw(images):
  """uint8/float NHWC numpy -> float32 NCHW tensor (values 0..255)."""
  return torch.from_numpy(
      np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 3, 1, 2))
  )


def diff(name, ours, theirs, tol=None):
  """Prints and returns (max abs, max relative) difference of two arrays."""
  a = np.asarray(ours, np.float64)
  b = (
      theirs.detach().cpu().numpy()
      if hasattr(theirs, 'detach')
      else np.asarray(theirs)
  ).astype(np.float64)
  if a.shape != b.shape:
    raise AssertionError(
        f'{name}: shapes differ, ours {a.shape} vs ' f'reference {b.shape}'
    )
  abs_diff = float(np.max(np.abs(a - b))) if a.size else 0.0
  rel = abs_diff / max(float(np.max(np.abs(b))), 1e-12)
  print(
      f'PARITY {name:<28} max|diff| {abs_diff:.3e}  relative {rel:.3e}  '
      f'(max|ref| {np.max(np.abs(b)):.3g})'
  )
  if tol is not None and not abs_diff <= tol:
    raise AssertionError(f'{name}: max abs diff {abs_diff:.3e} > {tol:.0e}')
  return abs_diff, rel
