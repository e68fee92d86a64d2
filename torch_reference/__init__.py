"""PyTorch reference of COST/TransT for parity tests, benchmarks and users.

Outside the JAX package on purpose: cost_jax never imports torch.

  model = torch_reference.build_model(config, bert_config_or_path)
  torch_reference.load_exported(model, 'model.torch.safetensors')  # strict
"""

import json
import os

from safetensors.torch import load_file
import torch
import transformers

from cost_jax.models.spec import spec_from_config
from torch_reference.cost import COST

__all__ = ['COST', 'bert_config', 'build_model', 'load_exported', 'randomize_']


def bert_config(bert_config_or_path, num_layers=0):
  """A transformers.BertConfig (eager attention) from a config/dict/folder.

  Accepts a transformers.BertConfig, a dict of config.json fields, an object
  with those attributes (e.g. cost_jax's BertConfig) or an HF folder.
  `num_layers` > 0 keeps only the first N encoder layers (config.text).
  """
  spec = bert_config_or_path
  if isinstance(spec, (str, os.PathLike)):
    with open(os.path.join(spec, 'config.json')) as f:
      spec = json.load(f)
  if isinstance(spec, transformers.BertConfig):
    spec = spec.to_dict()
  elif not isinstance(spec, dict):
    spec = dict(vars(spec))
  keep = (
      'vocab_size',
      'hidden_size',
      'num_hidden_layers',
      'num_attention_heads',
      'intermediate_size',
      'max_position_embeddings',
      'type_vocab_size',
      'layer_norm_eps',
      'hidden_dropout_prob',
      'attention_probs_dropout_prob',
      'hidden_act',
  )
  fields = {k: spec[k] for k in keep if k in spec}
  if num_layers:
    fields['num_hidden_layers'] = num_layers
  return transformers.BertConfig(**fields, attn_implementation='eager')


def build_model(config, bert_config_or_path=None):
  """The reference network for an ml_collections config (configs/cost.py).

  `bert_config_or_path` (see `bert_config`) is needed when
  config.model.language is True; config.text.num_layers is applied here.
  """
  bert = None
  if config.model.language:
    if bert_config_or_path is None:
      raise ValueError(
          'config.model.language=True needs the BERT config '
          '(a config, dict or HF folder).'
      )
    bert = bert_config(bert_config_or_path, config.text.num_layers)
  return COST(spec_from_config(config), bert)


def load_exported(model, path):
  """Loads `python -m cost_jax.convert export` output with strict=True."""
  model.load_state_dict(load_file(path), strict=True)
  return model


def randomize_(model, seed=0, scale=1.0):
  """Seeded random values for every parameter and float buffer, in place.

  Weights are fan-in scaled normals (activations keep unit scale), biases,
  norm affines and BatchNorm running statistics get random values too, so a
  mis-mapped tensor always changes the output.
  """
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, t in model.state_dict().items():  # Persistent tensors only.
      if not t.is_floating_point():
        continue
      leaf = name.rsplit('.', 1)[-1]
      if leaf == 'running_var':
        t.uniform_(0.5, 1.5, generator=gen)
      elif leaf == 'weight' and t.ndim == 1:  # Norm affine scales.
        t.normal_(1.0, 0.1, generator=gen)
      elif (
          t.ndim >= 2
          and leaf not in ('obj_token', 'vlt_pos')
          and ('embeddings' not in name)
      ):
        t.normal_(0.0, scale / t[0].numel() ** 0.5, generator=gen)
      else:  # Biases, running means, embeddings, [OBJ], positions.
        t.normal_(0.0, 0.1, generator=gen)
  return model
