"""TransT's modified ResNet-50 (cut after layer3, stride 8), NHWC.

Exactly as TransT: torchvision v1.5 bottlenecks (stride on the
3x3 conv), layer2 stride 2, layer3 stride 1 with only block 0 dilated (d=2),
explicit symmetric padding everywhere (never 'SAME'), BatchNorm eps 1e-5.
Submodule names follow the torch state_dict: conv1, bn1, layer{1,2,3}_{i}
with conv{1,2,3}, bn{1,2,3}, downsample_0 (conv) and downsample_1 (norm).
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
from jax import lax
import jax.numpy as jnp

from cost_jax.models.layers import conv

Dtype = Any


class BatchNorm(nn.Module):
  """torch.nn.BatchNorm2d (eps 1e-5, momentum 0.1) on NHWC.

  Training with norm='batch': batch statistics, reduced over `axis_name` when
  given (i.e. over the global batch); the running variance tracks the unbiased
  batch variance as torch does. Otherwise, and always with norm='frozen', the
  running averages are used (the affine parameters are still trained).
  Variables: params scale/bias, batch_stats mean/var.
  """

  norm: str = 'batch'
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    features = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (features,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (features,), jnp.float32)
    ra_mean = self.variable(
        'batch_stats', 'mean', jnp.zeros, (features,), jnp.float32
    )
    ra_var = self.variable(
        'batch_stats', 'var', jnp.ones, (features,), jnp.float32
    )
    if not train or self.norm == 'frozen':
      mean, var = ra_mean.value, ra_var.value
    else:
      xf = x.astype(jnp.float32)
      moments = (
          jnp.mean(xf, axis=(0, 1, 2)),
          jnp.mean(jnp.square(xf), axis=(0, 1, 2)),
      )
      count = x.shape[0] * x.shape[1] * x.shape[2]
      if self.axis_name is not None:
        moments = lax.pmean(moments, self.axis_name)
        count = count * lax.psum(1, self.axis_name)
      mean, var = moments[0], jnp.maximum(moments[1] - moments[0] ** 2, 0.0)
      if not self.is_initializing():
        unbiased = var * count / max(count - 1, 1)
        ra_mean.value = 0.9 * ra_mean.value + 0.1 * mean
        ra_var.value = 0.9 * ra_var.value + 0.1 * unbiased
    inv = scale * lax.rsqrt(var + 1e-5)
    return (x.astype(jnp.float32) * inv + (bias - mean * inv)).astype(
        self.dtype
    )


class Bottleneck(nn.Module):
  """torchvision Bottleneck (expansion 4)."""

  planes: int
  stride: int = 1
  dilation: int = 1
  downsample: bool = False
  norm: str = 'batch'
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    bn = lambda name: BatchNorm(
        self.norm, self.axis_name, self.dtype, name=name
    )
    d = self.dilation
    y = conv(self.planes, 1, dtype=self.dtype, name='conv1')(x)
    y = nn.relu(bn('bn1')(y, train))
    y = conv(
        self.planes,
        3,
        self.stride,
        padding=d,
        dilation=d,
        dtype=self.dtype,
        name='conv2',
    )(y)
    y = nn.relu(bn('bn2')(y, train))
    y = bn('bn3')(
        conv(self.planes * 4, 1, dtype=self.dtype, name='conv3')(y), train
    )
    if self.downsample:
      x = conv(
          self.planes * 4, 1, self.stride, dtype=self.dtype, name='downsample_0'
      )(x)
      x = bn('downsample_1')(x, train)
    return nn.relu(y + x)


class ResNet(nn.Module):
  """ResNet trunk up to layer3. blocks=(3,4,6), width=64 is TransT's ResNet-50."""

  blocks: Sequence[int] = (3, 4, 6)
  width: int = 64
  norm: str = 'batch'
  axis_name: Optional[str] = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    bn = lambda name: BatchNorm(
        self.norm, self.axis_name, self.dtype, name=name
    )
    x = conv(self.width, 7, 2, padding=3, dtype=self.dtype, name='conv1')(x)
    x = nn.relu(bn('bn1')(x, train))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    in_ch = self.width
    # (layer, planes, stride, dilation of block 0) as TransT hard-codes them.
    stages = (
        (1, self.width, 1, 1),
        (2, self.width * 2, 2, 1),
        (3, self.width * 4, 1, 2),
    )
    for (layer, planes, stride, dilation), num in zip(stages, self.blocks):
      for i in range(num):
        first = i == 0
        x = Bottleneck(
            planes,
            stride if first else 1,
            dilation if first else 1,
            downsample=first and (stride != 1 or in_ch != planes * 4),
            norm=self.norm,
            axis_name=self.axis_name,
            dtype=self.dtype,
            name=f'layer{layer}_{i}',
        )(x, train)
        in_ch = planes * 4
    return x
