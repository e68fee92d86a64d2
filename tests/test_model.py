"""The COST network: parameter counts, stage shapes, masks, variants, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cost
from cost_jax import ablations
from cost_jax import text as text_lib
from cost_jax.models import factory
from tests import tolerances

# The smoke forward pass as two jitted programs, which XLA may fuse and
# order differently (tests/tolerances.py).
FORWARD_RTOL = tolerances.SMOKE_FORWARD_RTOL


def _count(variant):
  config = cost.get_config(variant)
  model, spec = factory.create_model(config, shapes_only=True)
  return factory.count_by_component(
      factory.variable_shapes(model, spec)['params']
  )


@pytest.mark.parametrize(
    'variant,paper_millions',
    [
        ('paper', 146.5),
        ('paper,vlt_layers=2', 141.3),
        ('paper,vlt_layers=4', 143.9),
    ],
)
def test_paper_parameter_count(variant, paper_millions):
  total = _count(variant)['total']
  assert abs(total / 1e6 - paper_millions) / paper_millions < 0.01, total


def test_no_lb_is_exactly_transt():
  counts = _count('paper,no_lb')
  # TransT-N4: 23,016,006 trainable parameters (TransT's README: 23.0M).
  assert counts['total'] == 23_016_006
  assert set(counts) == {'backbone', 'fusion', 'head', 'total'}
  assert counts['backbone'] == 8_543_296


def test_paper_stage_shapes():
  """The shapes of docs/design.md ("Token layout"), via eval_shape (nothing allocated)."""
  config = cost.get_config('paper')
  model, spec = factory.create_model(config, shapes_only=True)
  variables = factory.variable_shapes(model, spec)
  b = 2
  z = jax.ShapeDtypeStruct((b, 128, 128, 3), jnp.uint8)
  x = jax.ShapeDtypeStruct((b, 256, 256, 3), jnp.uint8)
  ids = jax.ShapeDtypeStruct((b, 40), jnp.int32)
  template = jax.eval_shape(
      lambda v, z: model.apply(v, z, method=model.encode_template), variables, z
  )
  assert template['tokens'].shape == (b, 256, 256)
  text = jax.eval_shape(
      lambda v, i: model.apply(v, i, i, method=model.encode_text),
      variables,
      ids,
  )
  assert text['features'].shape == (b, 40, 768)

  def stages(v, x, t, l):
    def fn(m):
      fused = m._fuse(t, x, False)
      vis = m._visual_features(fused)
      tokens = m._vlt(vis, l, False)
      return fused, vis, tokens, m._head(tokens)

    return model.apply(v, method=fn)

  fused, vis, tokens, head = jax.eval_shape(
      stages, variables, x, template, text
  )
  assert fused.shape == (b, 1024, 256)
  assert vis.shape == (b, 400, 256)
  assert tokens.shape == (b, 441, 256)
  assert head['logits'].shape == (b, 441)
  assert head['boxes'].shape == (b, 441, 4)
  full = jax.eval_shape(
      lambda v, z, x, i: model.apply(v, z, x, i, i), variables, z, x, ids
  )
  assert full['coa_vis'].shape == full['coa_text'].shape == (b, 256)


def test_visual400_and_no_lb_grids():
  for variant, n in (('paper,grid=visual400', 400), ('paper,no_lb', 1024)):
    model, spec = factory.create_model(
        cost.get_config(variant), shapes_only=True
    )
    assert spec.grid_side**2 == n
    variables = factory.variable_shapes(model, spec)
    out = jax.eval_shape(
        lambda v, *a: model.apply(v, *a),
        variables,
        *factory.dummy_inputs(spec, 1),
    )
    assert out['boxes'].shape == (1, n, 4)
    if variant.endswith('no_lb'):
      assert out['logits'].shape == (1, n, 2)  # TransT's 2-class softmax.


def _inputs(spec, b=2, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.integers(
      0, 256, (b, spec.template_size, spec.template_size, 3), dtype=np.uint8
  )
  x = rng.integers(
      0, 256, (b, spec.search_size, spec.search_size, 3), dtype=np.uint8
  )
  tok = text_lib.Tokenizer(text_lib.bundled_minilm_path(), spec.text_len)
  ids, mask = tok.encode_batch(
      ['the red triangle moving left', 'a small blue circle'][:b]
  )
  return z, x, ids, mask


def test_smoke_runs_and_caches_match(smoke_model):
  _, model, spec, variables = smoke_model
  z, x, ids, mask = _inputs(spec)
  out = jax.jit(model.apply)(variables, z, x, ids, mask)
  n = spec.grid_side**2
  assert out['logits'].shape == (2, n) and out['boxes'].shape == (2, n, 4)
  assert np.all(np.isfinite(out['logits']))
  assert np.all((out['boxes'] >= 0) & (out['boxes'] <= 1))
  # Normalising sums the 32 squares once, np.linalg.norm once more.
  coa_dim = out['coa_vis'].shape[-1]
  np.testing.assert_allclose(
      np.linalg.norm(out['coa_vis'], axis=-1),
      1,
      rtol=tolerances.reordered(2, coa_dim),
  )
  template = jax.jit(
      functools.partial(model.apply, method=model.encode_template)
  )(variables, z)
  text = jax.jit(functools.partial(model.apply, method=model.encode_text))(
      variables, ids, mask
  )
  tracked = jax.jit(functools.partial(model.apply, method=model.track))(
      variables, x, template, text
  )
  for key in ('logits', 'boxes'):
    scale = float(np.abs(out[key]).max())
    np.testing.assert_allclose(
        tracked[key], out[key], atol=FORWARD_RTOL * scale, err_msg=key
    )


def test_padded_text_tokens_do_not_change_output(smoke_model):
  _, model, spec, variables = smoke_model
  z, x, ids, mask = _inputs(spec)
  garbage = np.where(mask > 0, ids, 1234 + np.arange(ids.shape[1]))
  apply = jax.jit(model.apply)
  a = apply(variables, z, x, ids, mask)
  b = apply(variables, z, x, garbage.astype(np.int32), mask)
  for key in a:  # Bit-equal: masked tokens enter every sum times exactly 0.
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  # ... while a real token does change it (the mask is not ignoring text),
  # by far more than FORWARD_RTOL.
  c = apply(
      variables, z, x, np.where(mask > 0, ids + 1, 0).astype(np.int32), mask
  )
  assert np.abs(np.asarray(a['logits']) - np.asarray(c['logits'])).max() > 1e-4


@pytest.mark.parametrize('ablation', ['no_obj', 'no_vlt', 'no_coa', 'no_lb'])
def test_ablations_build_and_run(ablation):
  config = cost.get_config(f'smoke,{ablation}')
  config.text.num_layers = 1
  model, spec = factory.create_model(config)
  z, x, ids, mask = _inputs(spec, b=1)
  variables = jax.jit(model.init)(jax.random.key(0), z, x, ids, mask)
  out = jax.jit(model.apply)(variables, z, x, ids, mask)
  assert np.all(np.isfinite(out['boxes']))
  params = variables['params']
  assert ('obj_token' in params) == (ablation not in ('no_obj', 'no_lb'))
  assert ('coa_vis' in out) == (ablation not in ('no_coa', 'no_lb'))
  assert ('vlt_0' in params) == (ablation not in ('no_vlt', 'no_lb'))


def test_wrong_image_shape_is_a_clear_error(smoke_model):
  _, model, spec, variables = smoke_model
  z, x, ids, mask = _inputs(spec, b=1)
  with pytest.raises(
      ValueError, match=r'search region must be .*\(B, 128, 128, 3\)'
  ):
    model.apply(variables, z, x[:, :100], ids, mask)
  with pytest.raises(ValueError, match='template must be'):
    model.apply(variables, z[..., :1], x, ids, mask)


def test_description_errors(caplog):
  tok = text_lib.Tokenizer(text_lib.bundled_minilm_path(), 40)
  with pytest.raises(TypeError, match="sequence 'bird1'"):
    tok.encode(None, name='bird1')
  ids, mask = tok.encode('', name='empty-seq')
  assert mask.sum() == 2 and 'empty-seq' in caplog.text
  ids, mask = tok.encode(' '.join(['word'] * 60), name='long-seq')
  assert mask.sum() == 40 and ids[39] == tok.sep_id
  assert 'long-seq' in caplog.text and 'keeping the first 38' in caplog.text


def test_unknown_variant_and_missing_text_folder(tmp_path):
  with pytest.raises(ValueError, match="Unknown config variant 'papr'"):
    cost.get_config('papr')
  config = cost.get_config('paper')
  config.text.path = str(tmp_path / 'bert-base-uncased')
  with pytest.raises(text_lib.TextModelError, match='--config.text.path'):
    factory.create_model(config)


def test_ablation_table_gives_mean_and_sample_sd():
  scores = {
      (a, s, t): {'auc': 0.1 * (s + 1), 'precision': 0.2, 'norm_precision': 0.3}
      for _, a in ablations.VARIANTS
      for s in (0, 1, 2)
      for _, t in ablations.TEST_SETS
  }
  row = ablations.table(scores, [0, 1, 2]).splitlines()[2]
  # AUC 10, 20, 30 %: mean 20, sample sd 10 (the population sd would be 8.2).
  assert row.startswith('| COST | 20.0 ± 10.0 | 20.0 ± 0.0 |'), row
  one = ablations.table(scores, [0]).splitlines()[2]
  assert one.startswith('| COST | 10.0 ± 0.0 |'), one
