"""The conversions into our format: transt, bert, resnet50 and import.

Each reads its source, maps the names (cost_jax/convert/names.py), checks
every tensor against the target model's shapes, and writes only when the
match is complete (or the gaps are allowed by `allow_missing`).
"""

import functools
import json
import os

from cost_jax import text as text_lib
from cost_jax.convert import bert_folder
from cost_jax.convert import matching
from cost_jax.convert import names
from cost_jax.convert import store
from cost_jax.convert import torch_files
from cost_jax.convert.matching import ConversionError
from cost_jax.convert.torch_files import read_file
from cost_jax.models import factory
from cost_jax.models.cost import COST

# BERT config fields that must agree (shapes, and numerics that shapes hide).
BERT_FIELDS = (
    'hidden_size',
    'num_attention_heads',
    'intermediate_size',
    'vocab_size',
    'max_position_embeddings',
    'type_vocab_size',
    'layer_norm_eps',
    'hidden_act',
)


@functools.lru_cache(maxsize=8)
def _spec_shapes(spec):
  return {
      path: tuple(leaf.shape)
      for path, leaf in names.flatten(
          factory.variable_shapes(COST(spec), spec)
      ).items()
  }


def target_shapes(config):
  """{JAX path: shape} of the config's model (no weights allocated)."""
  _, spec = factory.create_model(config, shapes_only=True)
  return dict(_spec_shapes(spec))


def _target_entries(config, prefixes=('',)):
  """torch key -> Entry for the config's model, restricted to `prefixes`."""
  return names.table(
      {
          path: shape
          for path, shape in target_shapes(config).items()
          if any(path.startswith(p) for p in prefixes)
      }
  )


def _strip(state, prefix):
  """Drops `prefix` from every key when all keys carry it."""
  if state and all(k.startswith(prefix) for k in state):
    return {k[len(prefix) :]: v for k, v in state.items()}
  return state


def _meta(command, source, config, report, covers):
  return {
      'command': command,
      'source': os.path.abspath(source),
      'variant': config.variant,
      'covers': list(covers),
      'layout': 'jax',
      'ignored': report.ignored,
      'left_to_init': report.left_to_init,
      'config': json.loads(config.to_json_best_effort()),
  }


def _convert(
    state,
    source,
    output,
    config,
    command,
    covers,
    ignore=None,
    allow_missing='',
):
  entries = _target_entries(config, covers)
  flat, report = matching.match(state, entries, source, ignore, allow_missing)
  report.check()
  store.write(output, flat, _meta(command, source, config, report, covers))
  return report


def convert_transt(source, output, config, target='no_lb', allow_missing=''):
  """Official TransT checkpoint ('net' inside its wrapper) -> no_lb or COST."""
  if target not in ('no_lb', 'cost'):
    raise ValueError(f"--target={target!r}: use 'no_lb' or 'cost'.")
  if config.model.language != (target == 'cost'):
    raise ValueError(
        f'--target={target} needs a config with model.language='
        f'{target == "cost"} (variant {config.variant!r}): use '
        + (
            'configs/cost.py:paper,no_lb'
            if target == 'no_lb'
            else 'configs/cost.py:paper'
        )
        + '.'
    )
  state = _strip(
      torch_files.state_dict(read_file(source), source, ('net',)), 'module.'
  )
  if target == 'no_lb':
    return _convert(
        state,
        source,
        output,
        config,
        'transt',
        ('',),
        allow_missing=allow_missing,
    )
  heads = lambda key: key.startswith(('class_embed.', 'bbox_embed.'))
  return _convert(
      state,
      source,
      output,
      config,
      'transt --target=cost',
      store.VISUAL_BRANCH,
      heads,
      allow_missing,
  )


def convert_resnet50(source, output, config, allow_missing=''):
  """torchvision ImageNet ResNet-50 state_dict -> the backbone (layer4, fc
  ignored)."""
  state = _strip(
      torch_files.state_dict(
          read_file(source), source, ('state_dict', 'model')
      ),
      'module.',
  )
  state = {f'{names.BACKBONE_TORCH}.{k}': v for k, v in state.items()}
  unused = lambda key: key.startswith(
      (f'{names.BACKBONE_TORCH}.layer4.', f'{names.BACKBONE_TORCH}.fc.')
  )
  return _convert(
      state,
      source,
      output,
      config,
      'resnet50',
      ('params/backbone/', 'batch_stats/backbone/'),
      unused,
      allow_missing,
  )


def _check_bert_config(folder, config):
  """The folder's config.json must describe the config's text model."""
  with open(os.path.join(folder, 'config.json')) as f:
    theirs = json.load(f)
  text_path = text_lib.resolve_text_path(config.text.path)
  ours = vars(text_lib.load_bert_config(text_path, allow_default=True))
  diff = [
      f'{k}: folder {theirs.get(k)!r}, config {ours[k]!r}'
      for k in BERT_FIELDS
      if theirs.get(k, ours[k]) != ours[k]
  ]
  if diff:
    raise ConversionError(
        f'BERT folder {folder} does not match the text model of config '
        f'{config.variant!r} (text.path={text_path!r}):\n    '
        + '\n    '.join(diff),
        f'convert it for a config whose --config.text.path is {folder}',
    )
  return theirs


def convert_bert(folder, output, config, allow_missing=''):
  """HF BERT folder -> the text encoder (any BERT config; `bert.` prefix
  stripped, `cls.*` heads and layers past config.text.num_layers ignored)."""
  if not config.model.language:
    raise ValueError(f'Variant {config.variant!r} has no text encoder.')
  state, source = bert_folder.torch_state(folder)
  theirs = _check_bert_config(folder, config)
  keep = config.text.num_layers or theirs.get('num_hidden_layers', 0)
  return _convert(
      state,
      source,
      output,
      config,
      'bert',
      (bert_folder.TEXT_ENCODER,),
      bert_folder.unused(keep),
      allow_missing,
  )


def convert_import(source, output, config, allow_missing=''):
  """A reference (torch_reference) state_dict -> the whole model."""
  state = _strip(
      torch_files.state_dict(
          read_file(source), source, ('net', 'state_dict', 'model')
      ),
      'module.',
  )
  return _convert(
      state,
      source,
      output,
      config,
      'import',
      ('',),
      allow_missing=allow_missing,
  )
