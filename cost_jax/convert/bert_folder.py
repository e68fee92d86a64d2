"""HF BERT folders (config.json + model.safetensors or pytorch_model.bin) as
torch-named state for the text encoder.

Shared by the `bert` conversion (`commands.convert_bert`) and by
`store.load_converted`, which converts a folder in memory.
"""

import os
import re

from cost_jax.convert import matching
from cost_jax.convert import names
from cost_jax.convert import torch_files
from cost_jax.convert.matching import ConversionError
from cost_jax.convert.torch_files import WeightFileError

TEXT_ENCODER = 'params/text_encoder/'


def weights_file(folder):
  """The folder's weights: model.safetensors, else pytorch_model.bin."""
  for name in ('model.safetensors', 'pytorch_model.bin'):
    path = os.path.join(folder, name)
    if os.path.exists(path):
      return path
  raise WeightFileError(
      f'BERT folder {folder} has neither model.safetensors '
      'nor pytorch_model.bin',
      'give an HF BERT folder with its weights',
  )


def torch_state(folder):
  """(torch-named state under `text_encoder.`, weights file) of an HF folder."""
  if not os.path.isfile(os.path.join(folder, 'config.json')):
    raise WeightFileError(
        f'{folder} is not an HF BERT folder (no config.json)',
        'give an HF BERT folder (config.json, weights, ' 'vocab.txt)',
    )
  source = weights_file(folder)
  state = torch_files.state_dict(torch_files.read_file(source), source, ())
  return {
      'text_encoder.' + k.removeprefix('bert.'): v for k, v in state.items()
  }, source


def unused(keep):
  """cls.* heads and encoder layers >= keep are dropped on purpose."""
  layer = re.compile(r'^text_encoder\.encoder\.layer\.(\d+)\.')

  def is_unused(key):
    found = layer.match(key)
    return key.startswith('text_encoder.cls.') or bool(
        found and int(found.group(1)) >= keep
    )

  return is_unused


def tensors(folder, target_shapes):
  """In-memory `bert` conversion for load_converted(FOLDER, variables):
  ({JAX path: array}, sidecar-like meta); checked against the target."""
  shapes = {
      p: s for p, s in target_shapes.items() if p.startswith(TEXT_ENCODER)
  }
  if not shapes:
    raise ConversionError(
        f'{folder}: this model has no text encoder',
        'use a variant with the linguistic branch (not ' 'no_lb)',
    )
  keep = len({p.split('/')[3] for p in shapes if '/encoder/layer_' in p})
  state, source = torch_state(folder)
  flat, report = matching.match(
      state, names.table(shapes), source, unused(keep)
  )
  report.check(
      'the text encoder is built from config.text.path: give the '
      "model that folder's config",
      'nothing was loaded',
  )
  return flat, {
      'command': 'bert (in memory)',
      'variant': '?',
      'covers': [TEXT_ENCODER],
  }
