"""The COST network (and, with `language=False`, TransT) in PyTorch.

Same numbers and same names as cost_jax/models/cost.py: images enter as RGB
0..255 (here NCHW float tensors) and are normalised inside; `encode_template`
and `encode_text` build the per-sequence caches, `track` runs one frame,
`forward` is the training forward on pairs. State-dict keys: TransT's
(`backbone.0.body.*`, `input_proj`, `featurefusion_network.*`,
`class_embed.layers.*`, `bbox_embed.layers.*`) plus `convs.{i}`,
`text_encoder.*` (transformers.BertModel incl. pooler), `coa_vis`,
`coa_text`, `vlt_vis_proj`, `vlt_text_proj`, `obj_token`, `vlt_pos` and
`vlt.{i}.{self_attn,linear1,linear2,norm1,norm2}`.
"""

import torch
from torch import nn
import torch.nn.functional as F
import transformers

from torch_reference import resnet, transt

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VLTLayer(transt.AttentionLayer):
  """Encoder layer; positions added to queries and keys only.

  Post-norm x = LN(x + f(x)), or pre-norm x = x + f(LN(x)) with the branch
  outputs (self_attn.out_proj, linear2) starting at zero when zero_init.
  """

  def __init__(
      self, dim, heads, ffn_dim, dropout, prenorm=False, zero_init=False
  ):
    super().__init__(dim, heads, ffn_dim, dropout)
    self.prenorm = prenorm
    self.self_attn = self.mha()
    self.linear1, self.linear2 = nn.Linear(dim, ffn_dim), nn.Linear(
        ffn_dim, dim
    )
    self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
    if zero_init:
      nn.init.zeros_(self.self_attn.out_proj.weight)
      nn.init.zeros_(self.linear2.weight)

  def forward(self, x, pos, key_padding_mask):
    if self.prenorm:
      h = self.norm1(x)
      x = x + self.drop(
          self.attend(self.self_attn, h + pos, h + pos, h, key_padding_mask)
      )
      return x + self.drop(self.ffn(self.norm2(x), self.linear1, self.linear2))
    a = self.attend(self.self_attn, x + pos, x + pos, x, key_padding_mask)
    x = self.norm1(x + self.drop(a))
    return self.norm2(x + self.drop(self.ffn(x, self.linear1, self.linear2)))


class COST(nn.Module):
  """COST, built from the same `ModelSpec` as the Flax model; a spec with
  language=False gives exactly TransT."""

  def __init__(self, spec, bert_config=None):
    """``spec``: the `cost_jax.models.spec.ModelSpec` the Flax model is built
    from; ``bert_config``: the HF BertConfig of the text encoder (language)."""
    super().__init__()
    self.language = spec.language
    self.grid = spec.grid
    self.search_feat = spec.search_feat
    dim = spec.dim
    self.backbone = nn.Sequential(
        transt.BackboneBody(resnet.ResNet(tuple(spec.blocks), spec.width)),
        transt.PositionEmbeddingSine(dim // 2),
    )
    self.input_proj = nn.Conv2d(spec.width * 16, dim, 1)
    self.featurefusion_network = transt.FeatureFusionNetwork(
        dim,
        spec.fusion_heads,
        spec.fusion_layers,
        spec.fusion_ffn,
        spec.dropout,
    )
    self.class_embed = transt.MLP(
        dim, dim, 1 if spec.language else 2, spec.head_layers
    )
    self.bbox_embed = transt.MLP(dim, dim, 4, spec.head_layers)
    self.register_buffer(
        'pixel_mean',
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        persistent=False,
    )
    self.register_buffer(
        'pixel_std',
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
        persistent=False,
    )
    if spec.language:
      self._build_language(spec, bert_config)

  def _build_language(self, spec, bert_config):
    dim = spec.dim
    self.coa = spec.coa
    self.text_len = spec.text_len
    self.convs = nn.ModuleList(
        nn.Conv2d(dim, dim, spec.conv_kernel) for _ in range(spec.num_convs)
    )
    self.text_encoder = transformers.BertModel(
        bert_config, add_pooling_layer=True
    )
    width = bert_config.hidden_size
    if self.coa:
      self.coa_vis, self.coa_text = nn.Linear(dim, dim), nn.Linear(width, dim)
    self.vlt_vis_proj = nn.Linear(dim, dim)
    self.vlt_text_proj = nn.Linear(width, dim)
    self.obj_token = (
        nn.Parameter(torch.zeros(1, dim)) if spec.obj_token else None
    )
    self.visual_tokens = spec.visual_side**2
    self.vlt_pos = nn.Parameter(
        torch.zeros(self.visual_tokens + self.text_len + 1, dim)
    )
    prenorm = spec.vlt_norm == 'pre'
    self.vlt = nn.ModuleList(
        VLTLayer(
            dim,
            spec.vlt_heads,
            spec.vlt_ffn,
            spec.vlt_dropout,
            prenorm,
            spec.vlt_zero_init,
        )
        for _ in range(spec.vlt_layers)
    )
    self.vlt_norm = nn.LayerNorm(dim) if prenorm and spec.vlt_layers else None
    self.hidden_dim = dim

  # --- visual branch -------------------------------------------------------
  def _tokens(self, image):
    """RGB 0..255 (B, 3, H, W) -> tokens (B, HW, C), positions (HW, C)."""
    x = (image.float() / 255.0 - self.pixel_mean) / self.pixel_std
    feature = self.backbone[0].body(x)
    pos = self.backbone[1](feature)
    tokens = self.input_proj(feature)
    return tokens.flatten(2).transpose(1, 2), pos

  def encode_template(self, template):
    tokens, pos = self._tokens(template)
    return {'tokens': tokens, 'pos': pos}

  def _fuse(self, template, search_image):
    search, pos = self._tokens(search_image)
    return self.featurefusion_network(
        template['tokens'], search, template['pos'], pos
    )

  # --- linguistic branch ---------------------------------------------------
  def encode_text(self, ids, mask):
    """Mean of all BERT layer outputs (not the embeddings); padding zeroed."""
    if not self.language:
      return {}
    out = self.text_encoder(
        input_ids=ids, attention_mask=mask, output_hidden_states=True
    )
    feats = torch.stack(out.hidden_states[1:]).mean(0)
    mask = mask.to(feats.dtype)
    return {'features': feats * mask[..., None], 'mask': mask}

  # --- COST additions ------------------------------------------------------
  def visual_features(self, fused):
    """F_xz (B, S*S, C) -> VALID convs (ReLU between) -> F0^v (B, V, C)."""
    b, _, c = fused.shape
    x = fused.transpose(1, 2).reshape(b, c, self.search_feat, self.search_feat)
    for i, layer in enumerate(self.convs):
      x = layer(x)
      if i < len(self.convs) - 1:
        x = F.relu(x)
    return x.flatten(2).transpose(1, 2)

  def vlt_forward(self, vis, text):
    b = vis.shape[0]
    obj = (
        self.obj_token
        if self.obj_token is not None
        else vis.new_zeros(1, self.hidden_dim)
    )
    x = torch.cat(
        [
            self.vlt_vis_proj(vis),
            self.vlt_text_proj(text['features']),
            obj.expand(b, 1, -1),
        ],
        dim=1,
    )
    valid = (
        torch.cat(
            [vis.new_ones(vis.shape[:2]), text['mask'], vis.new_ones(b, 1)],
            dim=1,
        )
        > 0
    )
    if not len(self.vlt):
      return x + self.vlt_pos
    for layer in self.vlt:
      x = layer(x, self.vlt_pos, ~valid)
    return self.vlt_norm(x) if self.vlt_norm is not None else x

  def head(self, tokens):
    if self.language and self.grid == 'visual400':
      tokens = tokens[:, : self.visual_tokens]
    logits = self.class_embed(tokens)
    if self.language:
      logits = logits[..., 0]
    return {'logits': logits, 'boxes': self.bbox_embed(tokens).sigmoid()}

  def track(self, search, template, text):
    """Per-frame step on cached template/text encodings."""
    fused = self._fuse(template, search)
    if not self.language:
      return self.head(fused)
    return self.head(self.vlt_forward(self.visual_features(fused), text))

  def forward(self, template, search, ids=None, mask=None):
    """Training forward; with language, adds L2-normalised CoA embeddings."""
    fused = self._fuse(self.encode_template(template), search)
    if not self.language:
      return self.head(fused)
    text = self.encode_text(ids, mask)
    vis = self.visual_features(fused)
    out = self.head(self.vlt_forward(vis, text))
    if self.coa:
      denom = text['mask'].sum(1, keepdim=True).clamp(min=1.0)
      out['coa_vis'] = F.normalize(self.coa_vis(vis.mean(1)), dim=-1, eps=1e-12)
      out['coa_text'] = F.normalize(
          self.coa_text(text['features'].sum(1) / denom), dim=-1, eps=1e-12
      )
    return out
