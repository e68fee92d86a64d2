"""TransT's feature-fusion network: 4 ECA+CFA layers, a CFA decoder and a norm.

Post-norm everywhere, LayerNorm eps 1e-5, positions added to queries and keys
only, both cross-attentions of a layer read the post-ECA states in parallel
(as TransT). Names follow `featurefusion_network.*` of the TransT state_dict.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cost_jax.models.layers import MultiheadAttention, TorchLayerNorm

Dtype = Any


class AttentionBlock(nn.Module):
  """Helpers shared by the fusion and VLT layers (torch-named sublayers)."""

  dim: int = 256
  num_heads: int = 8
  ffn_dim: int = 2048
  dropout: float = 0.1
  dtype: Dtype = jnp.float32

  def mha(self, name, zero_out=False):
    return MultiheadAttention(
        self.dim,
        self.num_heads,
        self.dropout,
        self.dtype,
        zero_out=zero_out,
        name=name,
    )

  def norm(self, name):
    return TorchLayerNorm(dtype=self.dtype, name=name)

  def drop(self, x, train):
    return nn.Dropout(self.dropout)(x, deterministic=not train)

  def ffn(self, x, first, second, train, zero_out=False):
    """first -> relu -> dropout -> second (torch Linear names)."""
    h = nn.relu(nn.Dense(self.ffn_dim, dtype=self.dtype, name=first)(x))
    init = nn.initializers.zeros if zero_out else nn.initializers.lecun_normal()
    return nn.Dense(self.dim, dtype=self.dtype, kernel_init=init, name=second)(
        self.drop(h, train)
    )


class FeatureFusionLayer(AttentionBlock):
  """One ECA+CFA layer; t = template tokens, s = search tokens."""

  @nn.compact
  def __call__(self, t, s, pt, ps, train=False):
    t = self.norm('norm11')(
        t
        + self.drop(
            self.mha('self_attn1')(t + pt, t + pt, t, train=train), train
        )
    )
    s = self.norm('norm21')(
        s
        + self.drop(
            self.mha('self_attn2')(s + ps, s + ps, s, train=train), train
        )
    )
    a_t = self.mha('multihead_attn1')(t + pt, s + ps, s, train=train)
    a_s = self.mha('multihead_attn2')(s + ps, t + pt, t, train=train)
    t = self.norm('norm12')(t + self.drop(a_t, train))
    t = self.norm('norm13')(
        t + self.drop(self.ffn(t, 'linear11', 'linear12', train), train)
    )
    s = self.norm('norm22')(s + self.drop(a_s, train))
    s = self.norm('norm23')(
        s + self.drop(self.ffn(s, 'linear21', 'linear22', train), train)
    )
    return t, s


class DecoderCFALayer(AttentionBlock):
  """The final CFA: search tokens attend to the template memory."""

  @nn.compact
  def __call__(self, tgt, memory, pos_tgt, pos_mem, train=False):
    a = self.mha('multihead_attn')(
        tgt + pos_tgt, memory + pos_mem, memory, train=train
    )
    tgt = self.norm('norm1')(tgt + self.drop(a, train))
    return self.norm('norm2')(
        tgt + self.drop(self.ffn(tgt, 'linear1', 'linear2', train), train)
    )


class _Stack(nn.Module):
  """A named container (`encoder` / `decoder`) of numbered layers."""

  num_layers: int
  kwargs: dict
  decoder: bool = False

  @nn.compact
  def __call__(self, t, s, pt, ps, train):
    if self.decoder:
      s = DecoderCFALayer(**self.kwargs, name='layers_0')(s, t, ps, pt, train)
      return TorchLayerNorm(dtype=self.kwargs['dtype'], name='norm')(s)
    for i in range(self.num_layers):
      t, s = FeatureFusionLayer(**self.kwargs, name=f'layers_{i}')(
          t, s, pt, ps, train
      )
    return t, s


class FeatureFusionNetwork(nn.Module):
  """Returns the fused search tokens F_xz: (B, N_search, dim)."""

  dim: int = 256
  num_heads: int = 8
  ffn_dim: int = 2048
  num_layers: int = 4
  dropout: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, template, search, pos_template, pos_search, train=False):
    kwargs = dict(
        dim=self.dim,
        num_heads=self.num_heads,
        ffn_dim=self.ffn_dim,
        dropout=self.dropout,
        dtype=self.dtype,
    )
    t, s = _Stack(self.num_layers, kwargs, name='encoder')(
        template, search, pos_template, pos_search, train
    )
    return _Stack(1, kwargs, decoder=True, name='decoder')(
        t, s, pos_template, pos_search, train
    )
