"""Builds the COST network from a config and initialises it (jitted)."""

import jax
import jax.numpy as jnp
import numpy as np

from cost_jax import text as text_lib
from cost_jax.models.cost import COMPONENTS, COST
from cost_jax.models.spec import ModelSpec, spec_from_config

# Top-level parameter names -> the component they belong to (for describe,
# optimizer groups and converters).


def component_of(top_level_name: str) -> str:
  """'convs_0' -> 'convs', 'vlt_3' -> 'vlt', 'text_encoder' -> 'text'."""
  if top_level_name in COMPONENTS:
    return COMPONENTS[top_level_name]
  base = top_level_name.rsplit('_', 1)[0]
  if base in COMPONENTS:
    return COMPONENTS[base]
  raise KeyError(f'Unknown parameter group {top_level_name!r}.')


def text_model_path(config) -> str:
  return text_lib.resolve_text_path(config.text.path)


def create_model(config, bn_axis_name=None, shapes_only=False):
  """Returns (COST module, ModelSpec).

  shapes_only: a missing text-model folder falls back to the bert-base
  architecture (for eval_shape / describe); otherwise it is an error.
  """
  bert = None
  if config.model.language:
    bert = text_lib.load_bert_config(
        text_model_path(config), allow_default=shapes_only
    )
  spec = spec_from_config(config, bert)
  return COST(spec, bn_axis_name=bn_axis_name), spec


def dummy_inputs(spec: ModelSpec, batch: int = 1):
  """Zero inputs of the training forward's shapes."""
  return (
      jnp.zeros((batch, spec.template_size, spec.template_size, 3), jnp.uint8),
      jnp.zeros((batch, spec.search_size, spec.search_size, 3), jnp.uint8),
      jnp.zeros((batch, spec.text_len), jnp.int32),
      jnp.ones((batch, spec.text_len), jnp.int32),
  )


def init_variables(model: COST, spec: ModelSpec, rng):
  """Randomly initialised {'params', 'batch_stats'} (one jitted call)."""
  return jax.jit(model.init)(rng, *dummy_inputs(spec))


def variable_shapes(model: COST, spec: ModelSpec):
  """Variable shapes without allocating (jax.eval_shape)."""
  return jax.eval_shape(model.init, jax.random.key(0), *dummy_inputs(spec))


def count_by_component(params) -> dict:
  """Parameter count per component and 'total'."""
  counts = {}
  for name, subtree in params.items():
    n = int(sum(np.prod(x.shape) for x in jax.tree.leaves(subtree)))
    comp = component_of(name)
    counts[comp] = counts.get(comp, 0) + n
  counts['total'] = sum(counts.values())
  return counts
