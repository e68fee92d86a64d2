"""Layers shared by the COST networks, numerically equal to their PyTorch twins.

Naming mirrors the PyTorch state_dict: a parameter `a.b.0.weight` lives at
`a/b_0/kernel|scale|embedding` here (see cost_jax/convert for the exact rules).
"""

import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cost_jax.models import cpu_conv
from cost_jax.models import rewrites

Dtype = Any
# PyTorch nn.LayerNorm default epsilon (Flax's default is 1e-6).
TorchLayerNorm = functools.partial(nn.LayerNorm, epsilon=1e-5)


def _attention_logits(q, k, key_mask=None):
  logits = jnp.einsum('bhqd,bhkd->bhqk', q, k).astype(jnp.float32)
  if key_mask is None:
    return logits
  return jnp.where(
      key_mask[:, None, None, :], logits, jnp.finfo(jnp.float32).min
  )


def attention_weights(q, k, key_mask=None):
  """Softmax(q k^T) over keys in f32. q: (B,H,Q,d) pre-scaled; k: (B,H,K,d)."""
  return jax.nn.softmax(_attention_logits(q, k, key_mask), axis=-1)


def attend(q, k, v, key_mask=None, drop=None, dtype=jnp.float32):
  """attention_weights(q, k, key_mask) @ v, the softmax divided out last.

  Dividing the (Q, d) output instead of the (Q, K) weights saves a pass over
  the weights (XLA:CPU, batch-16 tracking step: 8% of `demo` and `smoke`);
  the result differs by float32 rounding.  `drop` (dropout) acts on the
  unnormalised weights, the same as on the weights: it scales elements.
  """
  logits = _attention_logits(q, k, key_mask)
  e = jnp.exp(
      logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
  )
  total = jnp.sum(e, axis=-1, keepdims=True)
  if drop is not None:
    e = drop(e)
  out = jnp.einsum('bhqk,bhkd->bhqd', e.astype(dtype), v)
  return (out / total).astype(dtype)


def split_heads(x, num_heads):
  b, n, c = x.shape
  return x.reshape(b, n, num_heads, c // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
  b, h, n, d = x.shape
  return x.transpose(0, 2, 1, 3).reshape(b, n, h * d)


class FusedProjection(nn.Module):
  """The fused q/k/v projection of torch MHA: kernel (D, 3D) = in_proj_weight.T.

  `__call__(x, index)` applies column block `index` (0 = q, 1 = k, 2 = v).
  """

  dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, index):
    kernel = self.param(
        'kernel',
        nn.initializers.xavier_uniform(),
        (self.dim, 3 * self.dim),
        jnp.float32,
    )
    bias = self.param(
        'bias', nn.initializers.zeros, (3 * self.dim,), jnp.float32
    )
    cols = slice(index * self.dim, (index + 1) * self.dim)
    x = x.astype(self.dtype)
    return jnp.dot(x, kernel[:, cols].astype(self.dtype)) + bias[cols].astype(
        self.dtype
    )


class MultiheadAttention(nn.Module):
  """torch.nn.MultiheadAttention, batch-first: in_proj (fused), out_proj.

  q is scaled by head_dim**-0.5 after projection; heads are contiguous
  channel blocks; `key_mask` (B, K) is True for keys that may be attended.
  """

  dim: int
  num_heads: int
  dropout: float = 0.0
  dtype: Dtype = jnp.float32
  zero_out: bool = False  # out_proj starts at zero (a residual branch).

  @nn.compact
  def __call__(self, query, key, value, key_mask=None, train=False):
    in_proj = FusedProjection(self.dim, dtype=self.dtype, name='in_proj')
    head_dim = self.dim // self.num_heads
    q = split_heads(in_proj(query, 0) * head_dim**-0.5, self.num_heads)
    k = split_heads(in_proj(key, 1), self.num_heads)
    v = split_heads(in_proj(value, 2), self.num_heads)
    dropout = nn.Dropout(self.dropout)
    drop = lambda w: dropout(w, deterministic=not train)
    if rewrites.enabled():
      out = attend(q, k, v, key_mask, drop, self.dtype)
    else:  # the plain formulation (benchmarks time both)
      weights = drop(attention_weights(q, k, key_mask)).astype(self.dtype)
      out = jnp.einsum('bhqk,bhkd->bhqd', weights, v)
    init = (
        nn.initializers.zeros
        if self.zero_out
        else nn.initializers.lecun_normal()
    )
    return nn.Dense(
        self.dim, dtype=self.dtype, kernel_init=init, name='out_proj'
    )(merge_heads(out))


class MLP(nn.Module):
  """TransT's MLP: Linear -> ReLU -> ... -> Linear (no activation at the end)."""

  hidden_dim: int
  out_dim: int
  num_layers: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_layers):
      last = i == self.num_layers - 1
      x = nn.Dense(
          self.out_dim if last else self.hidden_dim,
          dtype=self.dtype,
          name=f'layers_{i}',
      )(x)
      if not last:
        x = nn.relu(x)
    return x


@functools.lru_cache(maxsize=16)
def sine_position_encoding(
    height: int, width: int, dim: int = 256, temperature: float = 10000.0
) -> np.ndarray:
  """DETR/TransT PositionEmbeddingSine(normalize=True) on an all-valid mask.

  Returns (H*W, dim) float32, channels [pos_y (dim/2), pos_x (dim/2)] with
  interleaved sin/cos, row-major tokens (h * W + w).
  """
  feats = dim // 2
  scale = 2 * np.pi
  y = np.arange(1, height + 1, dtype=np.float32)[:, None].repeat(width, 1)
  x = np.arange(1, width + 1, dtype=np.float32)[None, :].repeat(height, 0)
  y = y / (height + 1e-6) * scale
  x = x / (width + 1e-6) * scale
  dim_t = np.arange(feats, dtype=np.float32)
  dim_t = temperature ** (2 * (dim_t // 2) / feats)

  def encode(e):
    p = e[..., None] / dim_t
    return np.stack(
        [np.sin(p[..., 0::2]), np.cos(p[..., 1::2])], axis=-1
    ).reshape(height, width, feats)

  pos = np.concatenate([encode(y), encode(x)], axis=-1)
  return pos.reshape(height * width, dim).astype(np.float32)


def conv(
    features,
    kernel,
    stride=1,
    padding=0,
    dilation=1,
    bias=False,
    dtype=jnp.float32,
    name=None,
):
  """A PyTorch-style Conv2d (NHWC) with explicit symmetric padding."""
  return nn.Conv(
      features,
      (kernel, kernel),
      strides=(stride, stride),
      padding=((padding, padding), (padding, padding)),
      kernel_dilation=(dilation, dilation),
      use_bias=bias,
      dtype=dtype,
      name=name,
      conv_general_dilated=cpu_conv.conv_general_dilated,
  )


def check_dtype(name: Optional[str]) -> Dtype:
  dtypes = {
      'float32': jnp.float32,
      'bfloat16': jnp.bfloat16,
      'float16': jnp.float16,
  }
  if name not in dtypes:
    raise ValueError(f'config.model.dtype={name!r}: use one of {list(dtypes)}.')
  return dtypes[name]
