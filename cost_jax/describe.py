"""`--mode=describe`: parameter count per component, without allocating."""

import jax

from cost_jax.models import factory

ORDER = ('backbone', 'fusion', 'convs', 'text', 'coa', 'vlt', 'head')


def describe(config) -> dict:
  """Prints the per-component table and `total_params=<n>`; returns counts."""
  model, spec = factory.create_model(config, shapes_only=True)
  shapes = factory.variable_shapes(model, spec)
  counts = factory.count_by_component(shapes['params'])
  print(
      f'COST variant {config.variant!r}: template {spec.template_size}, '
      f'search {spec.search_size}, grid {spec.grid_side}x{spec.grid_side}, '
      f'text {spec.text_len} tokens (BERT {spec.bert.hidden_size}x'
      f'{spec.text_layers or spec.bert.num_hidden_layers})'
  )
  print(f'{"component":<10} {"params":>14} {"M":>9}')
  for name in ORDER:
    if name in counts:
      print(f'{name:<10} {counts[name]:>14,} {counts[name] / 1e6:>9.3f}')
  stats = sum(x.size for x in jax.tree.leaves(shapes.get('batch_stats', {})))
  print(f'{"buffers":<10} {stats:>14,}   (BatchNorm running statistics)')
  print(f'total_params={counts["total"]}')
  return counts
