"""Orbax checkpoints of the train state in WORKDIR/checkpoints (DESIGN.md §5).

One orbax CheckpointManager: periodic (config.train.ckpt_every), keep-N
(config.train.keep_ckpts), asynchronous and atomic (a step directory appears
only once complete, so a run killed mid-save leaves the previous checkpoint
as the latest). Each step holds two items: 'state' (step, params,
batch_stats, opt_state as replicated global arrays) and 'config' (the run's
config as JSON). Restoring targets the current devices' sharding, so a
checkpoint restores on any device or process count. A checkpoint of a
different network (other shapes) is refused with a clear error before
anything is read into memory or written.
"""

import json
import logging
import os

import jax
import orbax.checkpoint as ocp
from etils import epath
from flax import traverse_util


# Orbax saves replicated arrays "replica-parallel": it slices every array per
# replica, one small XLA compile per leaf shape on the first save (~30 s for
# our ~400 leaves on a CPU). Only arrays whose per-replica slice reaches this
# size are worth it; the rest are written by replica 0.
MIN_REPLICA_PARALLEL_BYTES = 64 << 20


def _use_replica_parallel_for_large_arrays_only():
  default = ocp.type_handlers.get_type_handler(jax.Array)
  absl_logger = logging.getLogger('absl')
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)  # Silences orbax's "overriding" warning.
  try:
    ocp.type_handlers.register_type_handler(
        jax.Array, ocp.type_handlers.ArrayHandler(
            min_slice_bytes_for_replica_parallel=MIN_REPLICA_PARALLEL_BYTES,
            array_metadata_store=getattr(default, '_array_metadata_store',
                                         None)), override=True)
  finally:
    absl_logger.setLevel(level)


_use_replica_parallel_for_large_arrays_only()


class CheckpointMismatchError(ValueError):
  """The workdir holds a checkpoint of another configuration."""


def config_to_dict(config) -> dict:
  """The config as plain JSON data (tuples become lists)."""
  return json.loads(config.to_json_best_effort())


def _shapes(tree) -> dict:
  """{'a/b/c': shape} of a nested dict of arrays or array metadata."""
  return {'/'.join(k): tuple(v.shape)
          for k, v in traverse_util.flatten_dict(tree).items()
          if v is not None and hasattr(v, 'shape')}


def shape_differences(saved, expected, limit=5) -> list:
  """Human-readable differences between two {'path': shape} maps."""
  lines = []
  for key in sorted(set(saved) | set(expected)):
    if key not in expected:
      lines.append(f'{key}: saved {saved[key]}, absent in this config')
    elif key not in saved:
      lines.append(f'{key}: {expected[key]} here, absent in the checkpoint')
    elif saved[key] != expected[key]:
      lines.append(f'{key}: saved {saved[key]}, this config {expected[key]}')
  if len(lines) > limit:
    lines = lines[:limit] + [f'... and {len(lines) - limit} more']
  return lines


class Checkpoints:
  """Saves and restores the train state under `workdir/checkpoints`."""

  def __init__(self, workdir, config, every=None, keep=None, async_save=True):
    local = '://' not in str(workdir)
    root = epath.Path(os.path.abspath(workdir) if local else workdir)
    self.directory = str(root / 'checkpoints')
    self.config = config
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep or config.train.keep_ckpts,
        save_interval_steps=every or config.train.ckpt_every,
        enable_async_checkpointing=async_save, create=True)
    self.manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={'state': ocp.StandardCheckpointHandler(),
                       'config': ocp.JsonCheckpointHandler()})

  def latest_step(self):
    return self.manager.latest_step()

  def path(self, step):
    if step is None:
      return None
    return str(epath.Path(self.directory) / str(step))

  def save(self, step, state, force=False) -> bool:
    """Starts an async save when due (or forced); True when one started.

    Every process must call it (orbax coordinates the multi-host write).
    """
    if step in self.manager.all_steps():
      return False
    return self.manager.save(
        step, force=force, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(config_to_dict(self.config))))

  def saved_config(self, step) -> dict:
    restored = self.manager.restore(
        step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return dict(restored['config'] or {})

  def check_compatible(self, step, abstract_state):
    """Raises CheckpointMismatchError when the shapes differ from this run's."""
    tree = self.manager.item_metadata(step)['state'].tree
    saved, expected = {}, {}
    for part in ('params', 'batch_stats'):
      saved.update({f'{part}/{k}': v
                    for k, v in _shapes(tree.get(part) or {}).items()})
      expected.update({f'{part}/{k}': v
                       for k, v in _shapes(abstract_state[part]).items()})
    diffs = shape_differences(saved, expected)
    if diffs:
      raise self._mismatch(step, 'its network has other shapes:\n  ' +
                           '\n  '.join(diffs))

  def _mismatch(self, step, why):
    saved = self.saved_config(step).get('variant', '?')
    return CheckpointMismatchError(
        f'{self.path(step)} is a checkpoint of another configuration (saved '
        f'variant {saved!r}, this run {self.config.variant!r}); {why}\n'
        f'Nothing was changed. Use another --workdir for this config, or move '
        f'{self.directory} away to start afresh.')

  def restore(self, abstract_state, step=None):
    """The state of `step` (default: latest) with `abstract_state`'s sharding,
    or None when the workdir has no checkpoint."""
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    self.check_compatible(step, abstract_state)
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state)))
    except (ValueError, KeyError, TypeError) as e:
      raise self._mismatch(step, f'restoring it failed: {e}') from e
    return restored['state']

  def wait(self):
    """Blocks until pending async saves are complete on disk."""
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()

