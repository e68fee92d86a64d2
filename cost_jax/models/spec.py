"""The network's schema: `ModelSpec` (every field that sets a shape) and the
text model's `BertConfig`, built from a config by `spec_from_config`.

Pure Python (no JAX): the Flax model (`cost_jax.models.cost`) and its PyTorch
twin (`torch_reference.cost`) are both built from a `ModelSpec`.
"""

import dataclasses
from typing import Optional

DTYPES = ('float32', 'bfloat16', 'float16')


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """The fields of an HF BERT `config.json` that define the network."""

  vocab_size: int = 30522
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  hidden_act: str = 'gelu'

  @classmethod
  def from_dict(cls, d):
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in fields})


STRIDE = 8


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """Everything that defines the network's shapes (hashable, for Flax)."""

  template_size: int = 128
  search_size: int = 256
  blocks: tuple = (3, 4, 6)
  width: int = 64
  norm: str = 'batch'
  dim: int = 256
  fusion_layers: int = 4
  fusion_heads: int = 8
  fusion_ffn: int = 2048
  dropout: float = 0.1
  language: bool = True
  coa: bool = True
  obj_token: bool = True
  num_convs: int = 3
  conv_kernel: int = 5
  vlt_layers: int = 6
  vlt_heads: int = 8
  vlt_ffn: int = 2048
  vlt_dropout: float = 0.1
  vlt_norm: str = 'post'
  vlt_zero_init: bool = False
  grid: str = 'tokens441'
  head_layers: int = 3
  text_len: int = 40
  text_layers: int = 0
  bert: BertConfig = BertConfig()
  dtype: str = 'float32'

  @property
  def search_feat(self):
    return self.search_size // STRIDE

  @property
  def visual_side(self):
    """Side of the visual token map after the VALID convs (20 for paper)."""
    return self.search_feat - self.num_convs * (self.conv_kernel - 1)

  @property
  def grid_side(self):
    """Side of the candidate grid the head scores (docs/design.md, "Output grid")."""
    if not self.language:
      return self.search_feat
    if self.grid == 'visual400':
      return self.visual_side
    return int(round((self.visual_side**2 + self.text_len + 1) ** 0.5))

  def validate(self):
    for name, size in (
        ('template_size', self.template_size),
        ('search_size', self.search_size),
    ):
      if size % STRIDE:
        raise ValueError(
            f'config.model.{name}={size} must be a multiple of '
            f'{STRIDE} (the backbone stride).'
        )
    if self.language and self.visual_side < 1:
      raise ValueError(
          f'{self.num_convs} VALID {self.conv_kernel}x{self.conv_kernel} convs '
          f'leave no tokens of the {self.search_feat}x{self.search_feat} search '
          'features: lower config.model.convs.* or raise search_size.'
      )
    if self.language and self.grid == 'tokens441':
      n = self.visual_side**2 + self.text_len + 1
      if self.grid_side**2 != n:
        raise ValueError(
            f"grid='tokens441' needs a square token count, got {n} = "
            f'{self.visual_side}^2 visual + {self.text_len} text + 1 [OBJ]: '
            'change config.text.max_len or config.model.convs, or use '
            'grid=visual400.'
        )
    if self.grid not in ('tokens441', 'visual400'):
      raise ValueError(
          f'config.model.head.grid={self.grid!r}: use tokens441 '
          'or visual400.'
      )
    if self.vlt_norm not in ('post', 'pre'):
      raise ValueError(
          f'config.model.vlt.norm={self.vlt_norm!r}: use post ' 'or pre.'
      )
    if self.norm not in ('batch', 'frozen'):
      raise ValueError(
          f'config.model.backbone.norm={self.norm!r}: use batch ' 'or frozen.'
      )
    if self.dtype not in DTYPES:
      raise ValueError(
          f'config.model.dtype={self.dtype!r}: use one of {list(DTYPES)}.'
      )
    return self


def spec_from_config(config, bert: Optional[BertConfig] = None) -> ModelSpec:
  """Builds the ModelSpec from a full config (model, text, loss sections)."""
  m = config.model
  return ModelSpec(
      template_size=m.template_size,
      search_size=m.search_size,
      blocks=tuple(m.backbone.blocks),
      width=m.backbone.width,
      norm=m.backbone.norm,
      dim=m.hidden_dim,
      fusion_layers=m.fusion.num_layers,
      fusion_heads=m.fusion.num_heads,
      fusion_ffn=m.fusion.ffn_dim,
      dropout=m.fusion.dropout,
      language=m.language,
      coa=m.language and config.loss.coa_weight > 0,
      obj_token=m.obj_token,
      num_convs=m.convs.num,
      conv_kernel=m.convs.kernel,
      vlt_layers=m.vlt.num_layers,
      vlt_heads=m.vlt.num_heads,
      vlt_ffn=m.vlt.ffn_dim,
      vlt_dropout=m.vlt.dropout,
      vlt_norm=m.vlt.get('norm', 'post'),
      vlt_zero_init=m.vlt.get('zero_init', False),
      grid=m.head.grid,
      head_layers=m.head.num_layers,
      text_len=config.text.max_len,
      text_layers=config.text.num_layers,
      bert=bert or BertConfig(),
      dtype=m.dtype,
  ).validate()
