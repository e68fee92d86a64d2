"""Loss and gradient parity on the smoke config: JAX vs torch autograd.

The reference (train mode: BatchNorm on batch statistics, dropout 0) and
torch_reference/losses.py (written from the paper) give the loss terms and
every parameter's gradient; cost_jax.losses and jax.grad must agree within
the float32 bounds below (figures printed with pytest -s).
"""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

import jax  # noqa: E402

from configs import cost  # noqa: E402
from cost_jax import losses  # noqa: E402
from cost_jax.convert import names  # noqa: E402
from cost_jax.models.spec import spec_from_config  # noqa: E402
from torch_reference import losses as ref_losses  # noqa: E402
from torch_reference import parity  # noqa: E402
from torch_reference.parity import SMALL_BERT, inputs  # noqa: E402
from tests import tolerances  # noqa: E402

# JAX and torch sum in other orders (tests/tolerances.py). The smoke forward
# pass chains ~41 sums (10 convs, 10 train-mode BatchNorms over 4 x 64 x 64
# = 16384 terms, input projection, fusion layer and decoder, 3 convs, VLT,
# head) and the backward pass as many again; relative to each term's or
# tensor's scale (loss terms floored at 1e-3, gradients at 1e-3 of the
# largest gradient, for tensors whose true gradient is ~0).
LOSS_TOL = tolerances.reordered(depth=41, length=16384)  # 4.9e-5
TOL = tolerances.reordered(depth=82, length=16384)  # 6.9e-5
# The loss alone on given outputs: ~5 sums (matching, softmax / sigmoid CE,
# L1, GIoU, means) over <= 4 pairs x 441 cells.
OUTPUTS_TOL = tolerances.reordered(depth=5, length=4 * 441)  # 5.6e-6
BATCH = 4


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def no_dropout_config(variant):
  config = cost.get_config(variant)
  config.model.fusion.dropout = 0.0
  config.model.vlt.dropout = 0.0
  return config


def batch_boxes(seed):
  """Crop-normalised cx, cy, w, h inside the crop, from tiny to large; the
  last pair's target is absent."""
  rng = np.random.default_rng(seed)
  size = rng.uniform([0.03, 0.03], [0.45, 0.45], (BATCH, 2))
  centre = rng.uniform(0.3, 0.7, (BATCH, 2))
  visible = np.array([1, 1, 1, 0], np.int32)
  return np.concatenate([centre, size], 1).astype(np.float32), visible


def jax_loss_and_grads(model, spec, config, variables, batch):
  def loss_fn(params):
    out, _ = model.apply(
        {'params': params, 'batch_stats': variables['batch_stats']},
        batch['template'],
        batch['search'],
        batch['text_ids'],
        batch['text_mask'],
        train=True,
        mutable=['batch_stats'],
    )
    terms = losses.compute_losses(out, batch, spec, config.loss)
    return terms['loss'], terms

  with jax.default_matmul_precision('highest'):
    (_, terms), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        variables['params']
    )
  return terms, grads


def reference_loss_and_grads(ref, config, batch):
  ref.train().zero_grad()
  out = ref(
      parity.nchw(batch['template']),
      parity.nchw(batch['search']),
      torch.from_numpy(batch['text_ids']).long(),
      torch.from_numpy(batch['text_mask']).long(),
  )
  terms = ref_losses.compute_losses(
      out,
      torch.from_numpy(batch['search_box']),
      torch.from_numpy(batch['visible']),
      config,
  )
  terms['loss'].backward()
  grads = {
      k: p.grad.numpy() for k, p in ref.named_parameters() if p.grad is not None
  }
  return {k: float(v.detach()) for k, v in terms.items()}, grads


def grads_in_jax_layout(torch_grads, jax_grads):
  shapes = {k: v.shape for k, v in names.flatten({'params': jax_grads}).items()}
  out = {}
  for key, entry in names.table(shapes).items():
    value = torch_grads.get(key, np.zeros(entry.torch_shape, np.float32))
    out[entry.path] = names.to_jax(entry.kind, value)
  return out


def test_loss_and_gradients_match_torch_autograd():
  """COST on smoke: every term, and d loss / d every parameter."""
  variant = 'smoke'
  config = no_dropout_config(variant)
  bert = dataclasses.replace(
      SMALL_BERT, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
  )
  ref, model, spec = parity.build_pair(config, bert, seed=4)
  variables = parity.variables_from_torch(ref, model, spec)
  z, x, ids, mask = inputs(spec, batch=2, seed=4)
  rep = lambda a: np.concatenate([a, a[::-1]])  # 4 pairs, 2 descriptions
  box, visible = batch_boxes(4)
  batch = {
      'template': rep(z),
      'search': rep(x),
      'text_ids': rep(ids),
      'text_mask': rep(mask),
      'search_box': box,
      'visible': visible,
  }
  batch['text_ids'][2:, 1] += 1  # ... made distinct for the CoA negatives.

  terms, grads = jax_loss_and_grads(model, spec, config, variables, batch)
  want_terms, torch_grads = reference_loss_and_grads(ref, config, batch)
  names_ = ['loss', 'ce', 'l1', 'giou'] + (['coa'] if spec.coa else [])
  for name in names_:
    parity.diff(f'{variant}/loss {name}', terms[name], want_terms[name])
    assert abs(float(terms[name]) - want_terms[name]) <= LOSS_TOL * max(
        abs(want_terms[name]), 1e-3
    ), name

  want = grads_in_jax_layout(torch_grads, grads)
  got = names.flatten({'params': grads})
  scale = max(np.abs(v).max() for v in want.values())
  worst = {}
  for path, value in want.items():
    abs_diff = float(np.abs(np.asarray(got[path]) - value).max())
    rel = abs_diff / max(float(np.abs(value).max()), 1e-3 * scale)
    component = path.split('/')[1].rstrip('_0123456789')
    worst[component] = max(
        worst.get(component, (0, 0, '')), (rel, abs_diff, path)
    )
  for component, (rel, abs_diff, path) in sorted(worst.items()):
    print(
        f'PARITY {variant}/grad {component:<18} max relative {rel:.2e} '
        f'(max|diff| {abs_diff:.2e}, worst {path})'
    )
    assert rel <= TOL, (component, path)


@pytest.mark.parametrize('variant', ['smoke,no_lb', 'smoke,grid=visual400'])
def test_loss_on_outputs_matches_torch(variant):
  """TransT's matcher + 2-class CE, and COST's visual400 grid: the loss terms
  and d loss / d (logits, boxes) on random head outputs (no network)."""
  config = cost.get_config(variant)
  spec = spec_from_config(config, SMALL_BERT)
  n = spec.grid_side**2
  rng = np.random.default_rng(7)
  logits = rng.normal(
      size=(BATCH, n, 2) if variant.endswith('no_lb') else (BATCH, n)
  ).astype(np.float32)
  boxes = rng.uniform(0.05, 0.95, (BATCH, n, 4)).astype(np.float32)
  box, visible = batch_boxes(7)
  batch = {
      'search_box': box,
      'visible': visible,
      'text_ids': np.zeros((BATCH, spec.text_len), np.int32),
  }

  def loss_fn(logits, boxes):
    terms = losses.compute_losses(
        {'logits': logits, 'boxes': boxes}, batch, spec, config.loss
    )
    return terms['loss'], terms

  (_, terms), grads = jax.jit(
      jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
  )(logits, boxes)
  t_logits = torch.from_numpy(logits).requires_grad_()
  t_boxes = torch.from_numpy(boxes).requires_grad_()
  want = ref_losses.compute_losses(
      {'logits': t_logits, 'boxes': t_boxes},
      torch.from_numpy(box),
      torch.from_numpy(visible),
      config,
  )
  want['loss'].backward()
  for name in ('loss', 'ce', 'l1', 'giou'):
    value = float(want[name].detach())
    parity.diff(f'{variant}/loss {name}', terms[name], value)
    assert abs(float(terms[name]) - value) <= OUTPUTS_TOL * max(
        abs(value), 1e-3
    ), name
  for name, got, ref in (
      ('logits', grads[0], t_logits.grad),
      ('boxes', grads[1], t_boxes.grad),
  ):
    _, rel = parity.diff(f'{variant}/grad {name}', got, ref)
    assert rel <= OUTPUTS_TOL, name
