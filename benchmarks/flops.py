"""Per-frame cost of the tracker by stage, from XLA's cost analysis.

  python -m benchmarks.flops                 # paper
  python -m benchmarks.flops --models=paper,paper+no_lb,demo

Lowers each stage of the per-frame step (batch 1, template and text cached)
with abstract weights (nothing is allocated or compiled) and prints XLA's
flop count (a multiply-add counts 2) and bytes accessed. The per-sequence
template and text encoders are listed separately: they are not per frame.
"""

import argparse
import sys

import jax
import jax.numpy as jnp

from configs import cost as cost_config
from cost_jax.models import factory


def stage_functions(spec):
  """{stage: (fn(module, *args), args as ShapeDtypeStructs)}, in order."""
  f32 = jnp.float32
  sx, tz, dim = spec.search_size, spec.template_size, spec.dim
  feat, tfeat = spec.search_feat, tz // 8
  image = lambda side: jax.ShapeDtypeStruct((1, side, side, 3), jnp.uint8)
  tokens = lambda n: jax.ShapeDtypeStruct((1, n, dim), f32)
  template = {
      'tokens': tokens(tfeat * tfeat),
      'pos': jax.ShapeDtypeStruct((tfeat * tfeat, dim), f32),
  }
  stages = {
      'per frame: backbone + input_proj (search)': (
          lambda m, x: m._tokens(x, False)[0],
          (image(sx),),
      ),
      'per frame: feature fusion': (
          lambda m, z, x: m.featurefusion_network(
              z['tokens'], x, z['pos'], jnp.zeros((feat * feat, dim)), False
          ),
          (template, tokens(feat * feat)),
      ),
  }
  if spec.language:
    text = {
        'features': jax.ShapeDtypeStruct(
            (1, spec.text_len, spec.bert.hidden_size), f32
        ),
        'mask': jax.ShapeDtypeStruct((1, spec.text_len), f32),
    }
    vis = tokens(spec.visual_side**2)
    stages.update(
        {
            'per frame: three convs': (
                lambda m, x: m._visual_features(x),
                (tokens(feat * feat),),
            ),
            'per frame: VLT (+ projections)': (
                lambda m, v, t: m._vlt(v, t, False),
                (vis, text),
            ),
            'per frame: head': (
                lambda m, x: m._head(x),
                (tokens(spec.visual_side**2 + spec.text_len + 1),),
            ),
        }
    )
    text_ids = jax.ShapeDtypeStruct((1, spec.text_len), jnp.int32)
    stages['per sequence: text encoder'] = (
        lambda m, i, k: m.encode_text(i, k),
        (text_ids, text_ids),
    )
  else:
    stages['per frame: head'] = (
        lambda m, x: m._head(x),
        (tokens(feat * feat),),
    )
  stages['per sequence: template encoder'] = (
      lambda m, z: m.encode_template(z),
      (image(tz),),
  )
  stages['per frame: whole step (track)'] = (
      lambda m, x, z, t: m.track(x, z, t),
      (image(sx), template, text if spec.language else {}),
  )
  return stages


def cost_of(model, variables, fn, args):
  lowered = jax.jit(lambda v, *a: model.apply(v, *a, method=fn)).lower(
      variables, *args
  )
  analysis = lowered.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # Older JAX: one dict per device.
    analysis = analysis[0]
  return analysis.get('flops', 0.0), analysis.get('bytes accessed', 0.0)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument(
      '--models',
      default='paper',
      help="config variants; '+' joins parts (paper+no_lb)",
  )
  args = ap.parse_args(argv)
  for name in args.models.split(','):
    config = cost_config.get_config(name.replace('+', ','))
    model, spec = factory.create_model(config, shapes_only=True)
    variables = factory.variable_shapes(model, spec)
    print(
        f'\n{name}: search {spec.search_size}, template '
        f'{spec.template_size}, dim {spec.dim}'
    )
    print(f'{"stage":<44} {"GFLOP":>8} {"MB accessed":>12}')
    for stage, (fn, stage_args) in stage_functions(spec).items():
      flops, nbytes = cost_of(model, variables, fn, stage_args)
      print(
          f'{stage:<44} {flops / 1e9:>8.2f} {nbytes / 1e6:>12.1f}', flush=True
      )
  return 0


if __name__ == '__main__':
  sys.exit(main())
