"""The checkpoint's saved config is used to track (cost_jax.run_config)."""

import logging

import pytest

from configs import cost
from cost_jax import checkpointing
from cost_jax import run_config
from tests.test_tracker import save_checkpoint


@pytest.fixture(scope='module')
def run(smoke_model, tmp_path_factory):
  """A smoke run trained with non-default tracker settings."""
  config, _, _, variables = smoke_model
  config = config.copy_and_resolve_references()
  config.track.min_size, config.track.size_lr = 3.0, 0.5
  config.data.search_factor = 5.0
  workdir = str(tmp_path_factory.mktemp('run_config'))
  save_checkpoint(workdir, config, variables)
  return workdir


def test_tracker_settings_come_from_the_checkpoint(run):
  config = run_config.with_checkpoint_config(
      cost.get_config('smoke'), run, overrides=set()
  )
  assert (config.track.min_size, config.track.size_lr) == (3.0, 0.5)
  assert config.data.search_factor == 5.0


def test_a_given_setting_wins_with_a_warning(run, caplog):
  given = cost.get_config('smoke')
  given.track.min_size = 7.0
  with caplog.at_level(logging.WARNING):
    config = run_config.with_checkpoint_config(
        given, run, overrides={'track.min_size'}
    )
  assert config.track.min_size == 7.0 and config.track.size_lr == 0.5
  assert 'track.min_size = 7.0 as given; the run was trained with 3.0' in (
      caplog.text
  )
  assert given.track.size_lr == 1.0  # the caller's config is not changed


def test_another_architecture_is_refused_naming_the_fields(run):
  with pytest.raises(checkpointing.CheckpointMismatchError) as caught:
    run_config.with_checkpoint_config(cost.get_config('smoke,no_obj'), run)
  message = str(caught.value)
  assert "trained as variant 'smoke'" in message
  assert 'model.obj_token: trained with True, given False' in message
  assert 'Fix: pass --config=configs/cost.py:smoke' in message


def test_shape_neutral_model_fields_are_accepted(run):
  given = cost.get_config('smoke')
  given.model.dtype = 'bfloat16'
  given.model.fusion.dropout = 0.0
  config = run_config.with_checkpoint_config(given, run, overrides=set())
  assert config.model.dtype == 'bfloat16'


def test_without_a_saved_config_the_given_one_is_used(tmp_path):
  given = cost.get_config('smoke')
  assert run_config.with_checkpoint_config(given, str(tmp_path)) is given
