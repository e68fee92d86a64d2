"""The COST network (paper §4; docs/design.md) and its TransT baseline (w/o LB).

Images enter as RGB in [0, 255] (any dtype, NHWC) and are normalised inside
(x / 255, ImageNet mean/std), so the tracker can ship uint8 crops to the device.
Apply methods serve the tracker: `encode_template` and `encode_text` once per
sequence, `track` per frame with those caches; `__call__` is the training
forward on a batch of pairs.
"""

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from cost_jax.models.bert import BertEncoder
from cost_jax.models.spec import ModelSpec
from cost_jax.models.fusion import AttentionBlock, FeatureFusionNetwork
from cost_jax.models.layers import MLP, TorchLayerNorm, check_dtype, conv
from cost_jax.models.layers import sine_position_encoding
from cost_jax.models.resnet import ResNet

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class VLTLayer(AttentionBlock):
  """Encoder layer; learnable positions added to q and k.

  prenorm=False: the transformer of [15], x = LN(x + f(x)); True:
  x = x + f(LN(x)). zero_init: the branch outputs (self_attn.out_proj,
  linear2) start at zero, so each layer starts as the identity (pre-norm) or
  a LayerNorm (post-norm) and the visual tokens reach the head unmixed until
  the layers learn what to add (docs/design.md, "The VLT's start").
  """

  prenorm: bool = False
  zero_init: bool = False

  @nn.compact
  def __call__(self, x, pos, key_mask, train=False):
    zero = self.zero_init
    if not self.prenorm:
      a = self.mha('self_attn', zero)(
          x + pos, x + pos, x, key_mask, train=train
      )
      x = self.norm('norm1')(x + self.drop(a, train))
      return self.norm('norm2')(
          x + self.drop(self.ffn(x, 'linear1', 'linear2', train, zero), train)
      )
    h = self.norm('norm1')(x)
    a = self.mha('self_attn', zero)(h + pos, h + pos, h, key_mask, train=train)
    x = x + self.drop(a, train)
    h = self.norm('norm2')(x)
    return x + self.drop(self.ffn(h, 'linear1', 'linear2', train, zero), train)


def _check_image(x, size, what):
  if x.ndim != 4 or x.shape[1:] != (size, size, 3):
    raise ValueError(
        f'{what} must be a batch of RGB crops of shape (B, {size}, {size}, 3) '
        f'(NHWC, values 0-255), got {tuple(x.shape)}. Crop it with '
        'cost_jax.crops.get_subwindow or change config.model.*_size.'
    )


# The component of each top-level parameter that COST.setup creates (a
# numbered list such as convs_0 or vlt_3 by its base name): it picks the
# optimizer group and what `config.train.frozen` freezes. A new layer in
# setup gets its line here.
COMPONENTS = {
    'backbone': 'backbone',
    'input_proj': 'fusion',
    'featurefusion_network': 'fusion',
    'convs': 'convs',
    'text_encoder': 'text',
    'coa_vis': 'coa',
    'coa_text': 'coa',
    'vlt': 'vlt',
    'vlt_vis_proj': 'vlt',
    'vlt_text_proj': 'vlt',
    'vlt_pos': 'vlt',
    'obj_token': 'vlt',
    'class_embed': 'head',
    'bbox_embed': 'head',
}


class COST(nn.Module):
  """COST; with spec.language=False exactly the TransT network."""

  spec: ModelSpec
  bn_axis_name: Optional[str] = None

  def setup(self):
    s, dtype = self.spec, check_dtype(self.spec.dtype)
    self.backbone = ResNet(s.blocks, s.width, s.norm, self.bn_axis_name, dtype)
    self.input_proj = conv(s.dim, 1, bias=True, dtype=dtype)
    self.featurefusion_network = FeatureFusionNetwork(
        s.dim, s.fusion_heads, s.fusion_ffn, s.fusion_layers, s.dropout, dtype
    )
    self.class_embed = MLP(s.dim, 1 if s.language else 2, s.head_layers, dtype)
    self.bbox_embed = MLP(s.dim, 4, s.head_layers, dtype)
    if not s.language:
      return
    self.convs = [
        conv(s.dim, s.conv_kernel, bias=True, dtype=dtype)
        for _ in range(s.num_convs)
    ]
    self.text_encoder = BertEncoder(s.bert, s.text_layers, dtype)
    if s.coa:
      self.coa_vis = nn.Dense(s.dim, dtype=dtype)
      self.coa_text = nn.Dense(s.dim, dtype=dtype)
    self.vlt_vis_proj = nn.Dense(s.dim, dtype=dtype)
    self.vlt_text_proj = nn.Dense(s.dim, dtype=dtype)
    if s.obj_token:
      self.obj = self.param(
          'obj_token', nn.initializers.normal(0.02), (1, s.dim), jnp.float32
      )
    num_tokens = s.visual_side**2 + s.text_len + 1
    self.vlt_pos = self.param(
        'vlt_pos',
        nn.initializers.normal(0.02),
        (num_tokens, s.dim),
        jnp.float32,
    )
    prenorm = s.vlt_norm == 'pre'
    self.vlt = [
        VLTLayer(
            s.dim,
            s.vlt_heads,
            s.vlt_ffn,
            s.vlt_dropout,
            dtype,
            prenorm=prenorm,
            zero_init=s.vlt_zero_init,
        )
        for _ in range(s.vlt_layers)
    ]
    if prenorm and s.vlt_layers:
      self.vlt_norm = TorchLayerNorm(dtype=dtype)

  # --- visual branch -------------------------------------------------------
  def _tokens(self, image, train):
    """Backbone + 1x1 input_proj -> (B, h*w, dim) tokens, (h*w, dim) pos."""
    x = image.astype(jnp.float32) / 255.0
    x = ((x - IMAGENET_MEAN) / IMAGENET_STD).astype(
        check_dtype(self.spec.dtype)
    )
    f = self.input_proj(self.backbone(x, train))
    b, h, w, c = f.shape
    pos = jnp.asarray(sine_position_encoding(h, w, c), f.dtype)
    return f.reshape(b, h * w, c), pos

  def encode_template(self, template, train=False):
    """Template crop (B, Tz, Tz, 3) -> cached tokens for `track`."""
    _check_image(template, self.spec.template_size, 'The template')
    tokens, pos = self._tokens(template, train)
    return {'tokens': tokens, 'pos': pos}

  # --- linguistic branch ---------------------------------------------------
  def encode_text(self, ids, mask, train=False):
    """Token ids/mask (B, T) -> F0^l (B, T, C_l); padded tokens zeroed."""
    if not self.spec.language:
      return {}
    if ids.ndim != 2 or ids.shape[1] != self.spec.text_len:
      raise ValueError(
          f'Text ids must have shape (B, {self.spec.text_len}), '
          f'got {tuple(ids.shape)}: tokenize with '
          'cost_jax.text.Tokenizer(max_len=config.text.max_len).'
      )
    feats, _ = self.text_encoder(ids, mask, train)
    mask = mask.astype(feats.dtype)
    return {'features': feats * mask[..., None], 'mask': mask}

  # --- fusion and head -----------------------------------------------------
  def _fuse(self, template, search_image, train):
    _check_image(search_image, self.spec.search_size, 'The search region')
    search, pos = self._tokens(search_image, train)
    return self.featurefusion_network(
        template['tokens'], search, template['pos'], pos, train
    )

  def _visual_features(self, fused):
    """F_xz (B, Sx*Sx, dim) -> three VALID convs -> F0^v (B, V, dim)."""
    s = self.spec
    x = fused.reshape(fused.shape[0], s.search_feat, s.search_feat, -1)
    for i, layer in enumerate(self.convs):
      x = layer(x)
      if i < len(self.convs) - 1:
        x = nn.relu(x)
    return x.reshape(x.shape[0], -1, x.shape[-1])

  def _vlt(self, vis, text, train):
    s = self.spec
    b = vis.shape[0]
    obj = self.obj if s.obj_token else jnp.zeros((1, s.dim), jnp.float32)
    x = jnp.concatenate(
        [
            self.vlt_vis_proj(vis),
            self.vlt_text_proj(text['features']),
            jnp.broadcast_to(obj.astype(vis.dtype), (b, 1, s.dim)),
        ],
        axis=1,
    )
    key_mask = jnp.concatenate(
        [
            jnp.ones(vis.shape[:2], bool),
            text['mask'] > 0,
            jnp.ones((b, 1), bool),
        ],
        axis=1,
    )
    pos = self.vlt_pos.astype(x.dtype)
    if not self.vlt:  # w/o VLT: aligned tokens + [OBJ] go to the head.
      return x + pos
    for layer in self.vlt:
      x = layer(x, pos, key_mask, train)
    return self.vlt_norm(x) if s.vlt_norm == 'pre' else x

  def _head(self, tokens):
    s = self.spec
    if s.language and s.grid == 'visual400':
      tokens = tokens[:, : s.visual_side**2]
    logits = self.class_embed(tokens).astype(jnp.float32)
    if s.language:
      logits = logits[..., 0]
    boxes = nn.sigmoid(self.bbox_embed(tokens).astype(jnp.float32))
    return {'logits': logits, 'boxes': boxes}

  def track(self, search, template, text, train=False):
    """Per-frame step on cached template/text encodings."""
    fused = self._fuse(template, search, train)
    if not self.spec.language:
      return self._head(fused)
    vis = self._visual_features(fused)
    return self._head(self._vlt(vis, text, train))

  def __call__(self, template, search, ids, mask, train=False):
    """Training forward on pairs; adds L2-normalised CoA embeddings."""
    z = self.encode_template(template, train)
    fused = self._fuse(z, search, train)
    if not self.spec.language:
      return self._head(fused)
    text = self.encode_text(ids, mask, train)
    vis = self._visual_features(fused)
    out = self._head(self._vlt(vis, text, train))
    if self.spec.coa:
      v = self.coa_vis(jnp.mean(vis, axis=1))
      denom = jnp.maximum(text['mask'].sum(1, keepdims=True), 1.0)
      l = self.coa_text(text['features'].sum(1) / denom)
      out['coa_vis'] = _l2_normalize(v.astype(jnp.float32))
      out['coa_text'] = _l2_normalize(l.astype(jnp.float32))
    return out


def _l2_normalize(x):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def candidate_scores(logits):
  """Target probability per candidate: sigmoid (COST) or softmax[...,0] (TransT)."""
  if logits.ndim == 3:
    return nn.softmax(logits, axis=-1)[..., 0]
  return nn.sigmoid(logits)
