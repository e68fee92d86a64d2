"""AdamW with parameter groups and TransT's step decay (docs/design.md,
"Parameter groups").

Groups come from the top-level parameter name (`factory.component_of`):
'backbone' (ResNet, config.train.backbone_lr), 'text' (BERT,
config.train.text_lr) and 'default' (everything else, config.train.lr). Any
component named in config.train.frozen ('backbone', 'text', 'fusion', 'vlt',
'head', ...) gets zero updates and no optimizer state. Weight decay applies
to every parameter as in torch.optim.AdamW; betas and eps are torch's
defaults. Global-norm clipping only when config.train.clip_norm > 0 (TransT
has none).
"""

import jax
import optax

from cost_jax.models import factory

GROUPS = ('backbone', 'text', 'default')
FROZEN = 'frozen'
COMPONENTS = tuple(sorted(set(factory.COMPONENTS.values())))


def total_steps(config) -> int:
  """config.train.num_steps, or num_epochs * pairs_per_epoch // batch_size."""
  t = config.train
  if t.num_steps > 0:
    return int(t.num_steps)
  steps = t.num_epochs * t.pairs_per_epoch // t.batch_size
  if steps < 1:
    raise ValueError(
        f'config.train: {t.num_epochs} epochs x {t.pairs_per_epoch} pairs '
        f'with batch {t.batch_size} give no step; set config.train.num_steps.'
    )
  return int(steps)


def frozen_components(config) -> frozenset:
  """Parses config.train.frozen ('backbone,text') and checks the names."""
  names = frozenset(
      n.strip() for n in config.train.frozen.split(',') if n.strip()
  )
  unknown = names - set(COMPONENTS)
  if unknown:
    raise ValueError(
        f'config.train.frozen names unknown groups '
        f'{sorted(unknown)}; use any of {", ".join(COMPONENTS)}.'
    )
  return names


def group_of(top_level_name: str, frozen=frozenset()) -> str:
  """Optimizer group of a top-level parameter ('frozen' if its component is)."""
  component = factory.component_of(top_level_name)
  if component in frozen:
    return FROZEN
  return component if component in GROUPS else 'default'


def param_labels(params, frozen=frozenset()):
  """Tree of group labels matching `params` (a dict of top-level modules)."""
  return {
      name: jax.tree.map(lambda _, g=group_of(name, frozen): g, subtree)
      for name, subtree in params.items()
  }


def learning_rates(config) -> dict:
  """Base learning rate of each trainable group."""
  t = config.train
  return {'backbone': t.backbone_lr, 'text': t.text_lr, 'default': t.lr}


def schedules(config) -> dict:
  """Per-group schedules: x decay_factor from step decay_fraction * steps."""
  t = config.train
  boundary = max(1, int(round(t.decay_fraction * total_steps(config))))
  return {
      g: optax.piecewise_constant_schedule(lr, {boundary: t.decay_factor})
      for g, lr in learning_rates(config).items()
  }


def make_optimizer(config, params):
  """Returns (optax transformation, {group: schedule}) for `params`.

  `params` may be arrays or ShapeDtypeStructs (only the tree is used).
  """
  t = config.train
  frozen = frozen_components(config)
  labels = param_labels(params, frozen)
  scheds = schedules(config)
  transforms = {
      g: optax.adamw(
          scheds[g], b1=0.9, b2=0.999, eps=1e-8, weight_decay=t.weight_decay
      )
      for g in GROUPS
  }
  transforms[FROZEN] = optax.set_to_zero()
  used = set(jax.tree.leaves(labels))
  transforms = {g: tx for g, tx in transforms.items() if g in used}
  tx = optax.partition(transforms, labels)
  if t.clip_norm > 0:
    # Frozen gradients are zeroed first so they do not count in the norm.
    trainable = optax.partition(
        {
            g: optax.set_to_zero() if g == FROZEN else optax.identity()
            for g in transforms
        },
        labels,
    )
    tx = optax.chain(trainable, optax.clip_by_global_norm(t.clip_norm), tx)
  return tx, {g: s for g, s in scheds.items() if g in used}
