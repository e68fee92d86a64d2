"""A paper-size run never starts from a random backbone without being told."""

import pytest

from configs import cost
from cost_jax import train


def test_paper_without_imagenet_weights_stops_with_the_conversion_command():
  config = cost.get_config('paper')
  with pytest.raises(ValueError, match='cost_jax.convert resnet50') as e:
    train.check_initial_backbone(config)
  assert 'from_scratch=True' in str(e.value)


@pytest.mark.parametrize(
    'field, value',
    [
        ('init_backbone', 'checkpoints/resnet50_backbone.safetensors'),
        ('init_transt', 'checkpoints/transt.safetensors'),
        ('from_scratch', True),
    ],
)
def test_paper_with_weights_or_explicit_scratch_goes_on(field, value):
  config = cost.get_config('paper')
  config.train[field] = value
  train.check_initial_backbone(config)


@pytest.mark.parametrize('variant', ['demo', 'smoke'])
def test_tiny_sizes_train_from_scratch_by_design(variant):
  train.check_initial_backbone(cost.get_config(variant))
