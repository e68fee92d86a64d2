"""BERT encoder (HF `BertModel` numerics and names) with layer-averaged output.

Any BERT config works (BERT-base 768/12, the bundled MiniLM 384/6). Exact GELU,
LayerNorm eps from the config (1e-12), attention mask as key mask. Names follow
the HF state_dict: embeddings/{word,position,token_type}_embeddings,
embeddings/LayerNorm, encoder/layer_{i}/attention/self/{query,key,value}, ...,
pooler/dense. The linguistic feature F0^l is the mean of the outputs of all
encoder layers (paper §4.3; not the embedding layer).
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cost_jax.models.spec import BertConfig
from cost_jax.models.layers import attention_weights, merge_heads, split_heads

Dtype = Any


def _activation(name):
  acts = {
      'gelu': lambda x: nn.gelu(x, approximate=False),
      'gelu_new': lambda x: nn.gelu(x, approximate=True),
      'relu': nn.relu,
  }
  if name not in acts:
    raise ValueError(
        f'BERT hidden_act={name!r} is not supported; '
        f'supported: {list(acts)}.'
    )
  return acts[name]


class _DenseOutput(nn.Module):
  """HF Bert{Self,}Output / Intermediate: dense [-> dropout -> LayerNorm(+res)]."""

  features: int
  eps: float = 0.0
  dropout: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, residual=None, train=False):
    x = nn.Dense(self.features, dtype=self.dtype, name='dense')(x)
    if residual is None:
      return x
    x = nn.Dropout(self.dropout)(x, deterministic=not train)
    return nn.LayerNorm(epsilon=self.eps, dtype=self.dtype, name='LayerNorm')(
        x + residual
    )


class BertSelfAttention(nn.Module):
  config: BertConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, mask, train):
    c = self.config
    h = c.num_attention_heads
    proj = lambda name: split_heads(
        nn.Dense(c.hidden_size, dtype=self.dtype, name=name)(x), h
    )
    q, k, v = proj('query'), proj('key'), proj('value')
    w = attention_weights(q * (c.hidden_size // h) ** -0.5, k, mask)
    w = nn.Dropout(c.attention_probs_dropout_prob)(w, deterministic=not train)
    return merge_heads(jnp.einsum('bhqk,bhkd->bhqd', w.astype(self.dtype), v))


class BertAttention(nn.Module):
  config: BertConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, mask, train):
    c = self.config
    ctx = BertSelfAttention(c, self.dtype, name='self')(x, mask, train)
    return _DenseOutput(
        c.hidden_size,
        c.layer_norm_eps,
        c.hidden_dropout_prob,
        self.dtype,
        name='output',
    )(ctx, x, train)


class BertLayer(nn.Module):
  config: BertConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, mask, train=False):
    c = self.config
    x = BertAttention(c, self.dtype, name='attention')(x, mask, train)
    y = _activation(c.hidden_act)(
        _DenseOutput(
            c.intermediate_size, dtype=self.dtype, name='intermediate'
        )(x)
    )
    return _DenseOutput(
        c.hidden_size,
        c.layer_norm_eps,
        c.hidden_dropout_prob,
        self.dtype,
        name='output',
    )(y, x, train)


class BertEmbeddings(nn.Module):
  config: BertConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, ids, train):
    c = self.config
    embed = lambda n, name: nn.Embed(
        n, c.hidden_size, dtype=self.dtype, name=name
    )
    positions = jnp.arange(ids.shape[1])[None, :]
    x = (
        embed(c.vocab_size, 'word_embeddings')(ids)
        + embed(c.max_position_embeddings, 'position_embeddings')(positions)
        + embed(c.type_vocab_size, 'token_type_embeddings')(jnp.zeros_like(ids))
    )
    x = nn.LayerNorm(
        epsilon=c.layer_norm_eps, dtype=self.dtype, name='LayerNorm'
    )(x)
    return nn.Dropout(c.hidden_dropout_prob)(x, deterministic=not train)


class BertLayerStack(nn.Module):
  """HF `encoder`: returns the mean of all layer outputs and the last one."""

  config: BertConfig
  num_layers: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, mask, train):
    total = jnp.zeros(x.shape, jnp.float32)
    for i in range(self.num_layers):
      x = BertLayer(self.config, self.dtype, name=f'layer_{i}')(x, mask, train)
      total = total + x.astype(jnp.float32)
    return (total / self.num_layers).astype(self.dtype), x


class BertEncoder(nn.Module):
  """Returns (layer-averaged features (B, T, C), pooled [CLS] (B, C))."""

  config: BertConfig
  num_layers: int = 0  # > 0 keeps only the first N layers.
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, ids, mask, train=False):
    c = self.config
    x = BertEmbeddings(c, self.dtype, name='embeddings')(ids, train)
    layers = self.num_layers or c.num_hidden_layers
    mean, last = BertLayerStack(c, layers, self.dtype, name='encoder')(
        x, mask.astype(bool), train
    )
    pooled = jnp.tanh(
        _DenseOutput(c.hidden_size, dtype=self.dtype, name='pooler')(last[:, 0])
    )
    return mean, pooled
