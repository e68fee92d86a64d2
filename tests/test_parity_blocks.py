"""Parity with the PyTorch reference, block by block and end to end.

Seeded random reference weights go through the converter (cost_jax/convert)
into the JAX model; every block gets the reference's own inputs, so each
figure measures that block alone. CPU, f32, matmul precision 'highest';
max |diff| <= RTOL x max |reference| everywhere (the figures are printed:
pytest -s).
"""

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

import jax  # noqa: E402

from configs import cost  # noqa: E402
from cost_jax.models.spec import BertConfig  # noqa: E402
from cost_jax.models.layers import sine_position_encoding  # noqa: E402
from torch_reference import parity  # noqa: E402
from torch_reference.parity import SMALL_BERT, inputs  # noqa: E402
from torch_reference.transt import PositionEmbeddingSine  # noqa: E402
from tests import tolerances  # noqa: E402

# JAX and torch sum in other orders (tests/tolerances.py). The longest chain
# compared is the paper-size forward: ResNet-50 to layer3 (40 convs), the
# input projection, 4 fusion layers and the decoder (~25 contractions), 3
# convs, 6 VLT layers (~30) and the head (3): ~102 sums of <= 6400 terms
# (the 5x5x256 convs). Every smoke block is shorter (train-mode backbone: 10
# convs + 10 BatchNorm sums of 2 x 64 x 64 terms). Relative to max |ref|:
RTOL = tolerances.reordered(depth=102, length=6400)  # 4.8e-5
# The sine table: |argument| <= 2 pi after ~4 roundings, then sin (2 more).
POSITIONS_TOL = tolerances.roundings(6, scale=2 * math.pi)  # 9.2e-7


@pytest.fixture(scope='module', autouse=True)
def numerics():
  with jax.default_matmul_precision('highest'), parity.torch_threads(1):
    yield


def reference_stages(ref, z, x, ids, mask):
  """The reference's intermediate tensors (its own inputs for each block)."""
  t = {}
  zt, xt = parity.nchw(z), parity.nchw(x)
  ids_t, mask_t = torch.from_numpy(ids).long(), torch.from_numpy(mask).long()
  t['image'] = (xt / 255.0 - ref.pixel_mean) / ref.pixel_std
  t['backbone'] = ref.backbone[0].body(t['image']).permute(0, 2, 3, 1)
  template = ref.encode_template(zt)
  t['template_tokens'], t['template_pos'] = template['tokens'], template['pos']
  t['search_tokens'], t['search_pos'] = ref._tokens(xt)
  t['fusion'] = ref.featurefusion_network(
      t['template_tokens'],
      t['search_tokens'],
      t['template_pos'],
      t['search_pos'],
  )
  if ref.language:
    t['convs'] = ref.visual_features(t['fusion'])
    text = ref.encode_text(ids_t, mask_t)
    t['bert'], t['text_mask'] = text['features'], text['mask']
    t['vlt'] = ref.vlt_forward(t['convs'], text)
    head = ref.head(t['vlt'])
  else:
    head = ref.head(t['fusion'])
  t['head_logits'], t['head_boxes'] = head['logits'], head['boxes']
  for key, value in ref(zt, xt, ids_t, mask_t).items():
    t[f'end_to_end_{key}'] = value
  body = copy.deepcopy(ref.backbone[0].body).train()
  t['backbone_train'] = body(t['image']).permute(0, 2, 3, 1)
  t['running_mean'] = body.layer3[-1].bn3.running_mean
  t['running_var'] = body.layer3[-1].bn3.running_var
  return {k: v.detach().numpy() for k, v in t.items()}


def jax_stages(model, variables, z, x, ids, mask, t):
  """The same blocks in JAX, fed the reference's inputs; one compilation."""

  def stages(m, z, x, ids, mask, t):
    o = {'backbone': m.backbone(t['image'].transpose(0, 2, 3, 1))}
    template = m.encode_template(z)
    o['template_tokens'], o['template_pos'] = (
        template['tokens'],
        template['pos'],
    )
    o['fusion'] = m.featurefusion_network(
        t['template_tokens'],
        t['search_tokens'],
        t['template_pos'],
        t['search_pos'],
    )
    if m.spec.language:
      o['convs'] = m._visual_features(t['fusion'])
      o['bert'] = m.encode_text(ids, mask)['features']
      o['vlt'] = m._vlt(
          t['convs'], {'features': t['bert'], 'mask': t['text_mask']}, False
      )
      head = m._head(t['vlt'])
    else:
      head = m._head(t['fusion'])
    o['head_logits'], o['head_boxes'] = head['logits'], head['boxes']
    for key, value in m(z, x, ids, mask).items():
      o[f'end_to_end_{key}'] = value
    # Train-mode BatchNorm last: it updates the running averages.
    o['backbone_train'] = m.backbone(t['image'].transpose(0, 2, 3, 1), True)
    return o

  apply = jax.jit(
      lambda v, *a: model.apply(v, *a, method=stages, mutable=['batch_stats'])
  )
  out, updates = apply(variables, z, x, ids, mask, t)
  bn = updates['batch_stats']['backbone']
  last = bn[f'layer3_{model.spec.blocks[2] - 1}']['bn3']
  out = dict(out, running_mean=last['mean'], running_var=last['var'])
  return {k: np.asarray(v) for k, v in out.items()}


def compare(prefix, ours, ref, keys):
  figures = {}
  for key in keys:
    figures[key] = parity.diff(f'{prefix}{key}', ours[key], ref[key])
    assert figures[key][1] <= RTOL, (key, figures[key])
  return figures


def run_variant(variant, bert, seed=0, batch=2):
  config = cost.get_config(variant)
  ref, model, spec = parity.build_pair(config, bert, seed)
  variables = parity.variables_from_torch(ref, model, spec)
  z, x, ids, mask = inputs(spec, batch, seed)
  with torch.no_grad():
    t = reference_stages(ref, z, x, ids, mask)
  return jax_stages(model, variables, z, x, ids, mask, t), t


@pytest.fixture(scope='module')
def smoke_stages():
  return run_variant('smoke', SMALL_BERT)


BLOCKS = [
    'backbone',
    'template_tokens',
    'fusion',
    'convs',
    'bert',
    'vlt',
    'head_logits',
    'head_boxes',
    'backbone_train',
    'running_mean',
    'running_var',
]


@pytest.mark.parametrize('block', BLOCKS)
def test_block(smoke_stages, block):
  ours, ref = smoke_stages
  compare('smoke/', ours, ref, [block])


def test_end_to_end_smoke(smoke_stages):
  ours, ref = smoke_stages
  keys = [k for k in ref if k.startswith('end_to_end_')]
  assert {k[len('end_to_end_') :] for k in keys} == {
      'logits',
      'boxes',
      'coa_vis',
      'coa_text',
  }
  compare('smoke/', ours, ref, keys)


def test_positions_equal_detr_sine():
  """The JAX table equals the reference's DETR sine encoding."""
  ref = PositionEmbeddingSine(128)(torch.zeros(1, 1, 16, 16))
  parity.diff(
      'positions 16x16', sine_position_encoding(16, 16, 256), ref, POSITIONS_TOL
  )


def test_transt_no_lb_end_to_end():
  """TransT (w/o LB): 2-class head on the 16x16 fusion tokens of smoke."""
  ours, ref = run_variant('smoke,no_lb', None, seed=1, batch=1)
  assert ours['end_to_end_logits'].shape == (1, 256, 2)
  compare(
      'no_lb/',
      ours,
      ref,
      ['fusion', 'end_to_end_logits', 'end_to_end_boxes', 'backbone_train'],
  )


def test_paper_size_end_to_end():
  """One forward at paper size: ResNet-50, BERT-base shapes, VLT L=6."""
  config = cost.get_config('paper')
  ref, model, spec = parity.build_pair(config, BertConfig(), seed=3)
  variables = parity.variables_from_torch(ref, model, spec)
  z, x, ids, mask = inputs(spec, batch=1, seed=3)
  with torch.no_grad():
    want = ref(
        parity.nchw(z),
        parity.nchw(x),
        torch.from_numpy(ids).long(),
        torch.from_numpy(mask).long(),
    )
  del ref
  got = jax.jit(model.apply)(variables, z, x, ids, mask)
  assert got['logits'].shape == (1, 441)
  compare(
      'paper/end_to_end_',
      got,
      {k: v.detach().numpy() for k, v in want.items()},
      ('logits', 'boxes', 'coa_vis', 'coa_text'),
  )
