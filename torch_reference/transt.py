"""TransT's visual branch in torch.nn, with the official state_dict key names.

Fact sheet §2-4: sine positions (DETR, normalize=True) on the backbone grids,
a shared 1x1 `input_proj`, the feature-fusion network (4 ECA+CFA layers, one
CFA decoder layer, a final LayerNorm; post-norm; positions added to queries
and keys only; both cross-attentions of a layer read the post-ECA states) and
the 3-layer MLP heads. Tensors are batch-first here (TransT is sequence-first;
the key names and the numbers are the same).
"""

import copy
import math

import torch
from torch import nn
import torch.nn.functional as F


class PositionEmbeddingSine(nn.Module):
  """DETR's PositionEmbeddingSine(normalize=True) on an all-valid mask."""

  def __init__(self, num_pos_feats=128, temperature=10000.0):
    super().__init__()
    self.num_pos_feats = num_pos_feats
    self.temperature = temperature

  def forward(self, feature):
    """(B, C, H, W) feature map -> (H*W, 2*num_pos_feats) positions."""
    h, w = feature.shape[-2:]
    not_mask = torch.ones(1, h, w, device=feature.device)
    y_embed = not_mask.cumsum(1, dtype=torch.float32)
    x_embed = not_mask.cumsum(2, dtype=torch.float32)
    scale, eps = 2 * math.pi, 1e-6
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(
        self.num_pos_feats, dtype=torch.float32, device=feature.device
    )
    dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
    pos_x = x_embed[:, :, :, None] / dim_t
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack(
        (pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4
    ).flatten(3)
    pos_y = torch.stack(
        (pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4
    ).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3)[0].reshape(h * w, -1)


class BackboneBody(nn.Module):
  """Holds the trunk as `body`, so its keys read `backbone.0.body.*`."""

  def __init__(self, body):
    super().__init__()
    self.body = body


class AttentionLayer(nn.Module):
  """Post-norm attention helpers shared by the fusion and VLT layers."""

  def __init__(self, dim, heads, ffn_dim, dropout):
    super().__init__()
    self.dim, self.heads, self.ffn_dim, self.p = dim, heads, ffn_dim, dropout

  def mha(self):
    return nn.MultiheadAttention(
        self.dim, self.heads, dropout=self.p, batch_first=True
    )

  def attend(self, attn, q, k, v, key_padding_mask=None):
    return attn(q, k, v, key_padding_mask=key_padding_mask, need_weights=False)[
        0
    ]

  def ffn(self, x, first, second):
    """first -> ReLU -> dropout -> second."""
    return second(F.dropout(F.relu(first(x)), self.p, self.training))

  def drop(self, x):
    return F.dropout(x, self.p, self.training)


class FeatureFusionLayer(AttentionLayer):
  """One ECA+CFA layer (t = template tokens, s = search tokens)."""

  def __init__(self, dim, heads, ffn_dim, dropout):
    super().__init__(dim, heads, ffn_dim, dropout)
    for name in (
        'self_attn1',
        'self_attn2',
        'multihead_attn1',
        'multihead_attn2',
    ):
      self.add_module(name, self.mha())
    self.linear11, self.linear12 = nn.Linear(dim, ffn_dim), nn.Linear(
        ffn_dim, dim
    )
    self.linear21, self.linear22 = nn.Linear(dim, ffn_dim), nn.Linear(
        ffn_dim, dim
    )
    for name in ('norm11', 'norm12', 'norm13', 'norm21', 'norm22', 'norm23'):
      self.add_module(name, nn.LayerNorm(dim))

  def forward(self, t, s, pt, ps):
    t = self.norm11(
        t + self.drop(self.attend(self.self_attn1, t + pt, t + pt, t))
    )
    s = self.norm21(
        s + self.drop(self.attend(self.self_attn2, s + ps, s + ps, s))
    )
    a_t = self.attend(self.multihead_attn1, t + pt, s + ps, s)
    a_s = self.attend(self.multihead_attn2, s + ps, t + pt, t)
    t = self.norm12(t + self.drop(a_t))
    t = self.norm13(t + self.drop(self.ffn(t, self.linear11, self.linear12)))
    s = self.norm22(s + self.drop(a_s))
    s = self.norm23(s + self.drop(self.ffn(s, self.linear21, self.linear22)))
    return t, s


class DecoderCFALayer(AttentionLayer):
  """The final CFA: search tokens (tgt) attend to the template (memory)."""

  def __init__(self, dim, heads, ffn_dim, dropout):
    super().__init__(dim, heads, ffn_dim, dropout)
    self.multihead_attn = self.mha()
    self.linear1, self.linear2 = nn.Linear(dim, ffn_dim), nn.Linear(
        ffn_dim, dim
    )
    self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

  def forward(self, tgt, memory, pos_tgt, pos_mem):
    a = self.attend(
        self.multihead_attn, tgt + pos_tgt, memory + pos_mem, memory
    )
    tgt = self.norm1(tgt + self.drop(a))
    return self.norm2(
        tgt + self.drop(self.ffn(tgt, self.linear1, self.linear2))
    )


class Encoder(nn.Module):

  def __init__(self, layer, num_layers):
    super().__init__()
    self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

  def forward(self, t, s, pt, ps):
    for layer in self.layers:
      t, s = layer(t, s, pt, ps)
    return t, s


class Decoder(nn.Module):

  def __init__(self, layer, dim):
    super().__init__()
    self.layers = nn.ModuleList([layer])
    self.norm = nn.LayerNorm(dim)

  def forward(self, tgt, memory, pos_tgt, pos_mem):
    return self.norm(self.layers[0](tgt, memory, pos_tgt, pos_mem))


class FeatureFusionNetwork(nn.Module):
  """Template/search tokens (B, N, C) -> fused search tokens (B, Ns, C)."""

  def __init__(self, dim=256, heads=8, num_layers=4, ffn_dim=2048, dropout=0.1):
    super().__init__()
    self.encoder = Encoder(
        FeatureFusionLayer(dim, heads, ffn_dim, dropout), num_layers
    )
    self.decoder = Decoder(DecoderCFALayer(dim, heads, ffn_dim, dropout), dim)

  def forward(self, template, search, pos_template, pos_search):
    t, s = self.encoder(template, search, pos_template, pos_search)
    return self.decoder(s, t, pos_search, pos_template)


class MLP(nn.Module):
  """TransT/DETR MLP: Linear -> ReLU -> ... -> Linear."""

  def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
    super().__init__()
    dims = [hidden_dim] * (num_layers - 1)
    self.layers = nn.ModuleList(
        nn.Linear(n, k) for n, k in zip([input_dim] + dims, dims + [output_dim])
    )

  def forward(self, x):
    for i, layer in enumerate(self.layers):
      x = layer(x)
      if i < len(self.layers) - 1:
        x = F.relu(x)
    return x
