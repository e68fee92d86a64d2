"""Orbax checkpoints of the train state in WORKDIR/checkpoints (docs/design.md).

One orbax CheckpointManager: periodic (config.train.ckpt_every), keep-N
(config.train.keep_ckpts), asynchronous and atomic (a step directory appears
only once complete, so a run killed mid-save leaves the previous checkpoint
as the latest). Each step holds two items: 'state' (step, params,
batch_stats, opt_state as replicated global arrays) and 'config' (the run's
config as JSON). Restoring targets the current devices' sharding, so a
checkpoint restores on any device or process count. A checkpoint of a
different network (other shapes) is refused with a clear error before
anything is read into memory or written. A checkpoint whose files cannot be
read (truncated or missing data) is named in a warning, left in place and
skipped: the newest readable one is used; a run that then saves moves the
unreadable steps aside to `<step>.unreadable` first (never deleted).
"""

import json
import logging
import os
import re
import sys

import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp
from etils import epath
from flax import traverse_util
import ml_collections

from cost_jax import errors

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
        jax.Array,
        ocp.type_handlers.ArrayHandler(
            min_slice_bytes_for_replica_parallel=MIN_REPLICA_PARALLEL_BYTES,
            array_metadata_store=getattr(
                default, '_array_metadata_store', None
            ),
        ),
        override=True,
    )
  finally:
    absl_logger.setLevel(level)


_use_replica_parallel_for_large_arrays_only()


class CheckpointMismatchError(errors.UserError, ValueError):
  """The workdir holds a checkpoint of another configuration."""


class UnreadableCheckpointError(OSError):
  """No checkpoint of the workdir can be read; names each one."""


# TensorStore (absl status) codes of errors raised when checkpoint files are
# missing, truncated or corrupt; a structure mismatch has none of them.
_READ_FAILURE = re.compile(
    r'\b(OUT_OF_RANGE|DATA_LOSS|FAILED_PRECONDITION|'
    r'NOT_FOUND|UNAVAILABLE|UNKNOWN|INTERNAL):'
)


def is_read_failure(error) -> bool:
  """True when `error` or one of its causes says files could not be read."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(
        error, (OSError, json.JSONDecodeError)
    ) or _READ_FAILURE.search(str(error)):
      return True
    error = error.__cause__ or error.__context__
  return False


def _drop_closed_event_loop_reports():
  """Silences orbax's late 'RuntimeError: Event loop is closed' reports.

  After one read of a restore fails, orbax closes its event loop while other
  reads are in flight; each of them then reports that error through
  sys.unraisablehook. Other reports pass to the previous hook.
  """
  previous = sys.unraisablehook
  if getattr(previous, 'drops_closed_event_loop', False):
    return

  def hook(unraisable):
    error = unraisable.exc_value
    if not (
        isinstance(error, RuntimeError) and str(error) == 'Event loop is closed'
    ):
      previous(unraisable)

  hook.drops_closed_event_loop = True
  sys.unraisablehook = hook


def _first_line(error) -> str:
  """The line of `error`'s chain that says what could not be read."""
  while (
      error.__cause__ is not None  # The innermost cause names the file.
      and not isinstance(error, UnreadableCheckpointError)
  ):
    error = error.__cause__
  line = (str(error).strip().splitlines() or [''])[0][:300]
  own = isinstance(error, UnreadableCheckpointError)
  return (
      line
      if own or _READ_FAILURE.search(line)
      else (f'{type(error).__name__}: {line}')
  )


def newest_readable(steps, read, directory):
  """(read(step), step) for the newest step that `read` can read.

  Unreadable steps (`is_read_failure`) are named in a warning and skipped;
  other errors propagate. Raises UnreadableCheckpointError when none is
  readable. Nothing on disk is changed.
  """
  _drop_closed_event_loop_reports()
  failures = []
  for step in sorted(steps, reverse=True):
    try:
      return read(step), step
    except Exception as e:  # pylint: disable=broad-except
      if not is_read_failure(e):
        raise
      why = _first_line(e)
      failures.append(f'step {step}: {why}')
      logging.warning(
          'Checkpoint %s is unreadable (%s); it is left in place '
          'and skipped.',
          os.path.join(directory, str(step)),
          why,
      )
  raise UnreadableCheckpointError(
      f'no checkpoint in {directory} can be read ({"; ".join(failures)}). '
      'Nothing was changed. Fix: restore that folder from a copy, or move it '
      'away to start afresh.'
  )


def config_to_dict(config) -> dict:
  """The config as plain JSON data (tuples become lists)."""
  return json.loads(config.to_json_best_effort())


def checkpoints_dir(workdir) -> epath.Path:
  """WORKDIR/checkpoints: absolute when local, as given for a bucket (gs://...)."""
  workdir = os.fspath(workdir)
  local = '://' not in workdir
  return (
      epath.Path(os.path.abspath(workdir) if local else workdir) / 'checkpoints'
  )


def step_config(step_dir) -> dict:
  """The config saved in a checkpoint step folder (JSON data), {} if none."""
  try:
    return json.loads(
        (epath.Path(step_dir) / 'config' / 'metadata').read_text()
    )
  except (OSError, ValueError):  # no config item, or an unreadable one
    return {}


def saved_config(workdir):
  """The config saved with the newest checkpoint of WORKDIR/checkpoints that
  has one (an ml_collections.ConfigDict), or None."""
  root = checkpoints_dir(workdir)
  steps = sorted(
      (int(p.name) for p in root.iterdir() if p.name.isdigit())
      if root.is_dir()
      else (),
      reverse=True,
  )
  for step in steps:
    config = step_config(root / str(step))
    if config:
      return ml_collections.ConfigDict(config)
  return None


def _shapes(tree) -> dict:
  """{'a/b/c': shape} of a nested dict of arrays or array metadata."""
  return {
      '/'.join(k): tuple(v.shape)
      for k, v in traverse_util.flatten_dict(tree).items()
      if v is not None and hasattr(v, 'shape')
  }


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
    self.directory = str(checkpoints_dir(workdir))
    self.config = config
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep or config.train.keep_ckpts,
        save_interval_steps=every or config.train.ckpt_every,
        enable_async_checkpointing=async_save,
        create=True,
    )
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=options,
        item_handlers={
            'state': ocp.StandardCheckpointHandler(),
            'config': ocp.JsonCheckpointHandler(),
        },
    )
    self.unreadable = []  # Steps skipped by `restore`, newest first.

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
    if self.unreadable:
      self._set_aside_unreadable()
    if step in self.manager.all_steps():
      return False
    return self.manager.save(
        step,
        force=force,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(config_to_dict(self.config)),
        ),
    )

  def _set_aside_unreadable(self):
    """Renames the skipped steps to `<step>.unreadable` before a save: orbax
    would refuse to save their step again, and delete them when keeping N."""
    if jax.process_index() == 0:
      for step in self.unreadable:
        source = epath.Path(self.path(step))
        target = source.parent / f'{step}.unreadable'
        n = 0
        while target.exists():
          n += 1
          target = source.parent / f'{step}.unreadable.{n}'
        source.rename(target)
        logging.warning(
            'Moved unreadable checkpoint %s to %s (kept).', source, target
        )
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('cost_jax_unreadable_set_aside')
    self.unreadable = []
    self.manager.reload()

  def saved_config(self, step) -> dict:
    try:
      restored = self.manager.restore(
          step, args=ocp.args.Composite(config=ocp.args.JsonRestore())
      )
    except Exception as e:  # pylint: disable=broad-except
      if not is_read_failure(e):
        raise
      return {}
    return dict(restored['config'] or {})

  def check_compatible(self, step, abstract_state):
    """Raises CheckpointMismatchError when the shapes differ from this run's."""
    try:
      tree = self.manager.item_metadata(step)['state'].tree
    except (KeyError, AttributeError) as e:  # No (readable) 'state' item.
      raise UnreadableCheckpointError(
          f'{self.path(step)} has no readable "state" item'
      ) from e
    saved, expected = {}, {}
    for part in ('params', 'batch_stats'):
      saved.update(
          {f'{part}/{k}': v for k, v in _shapes(tree.get(part) or {}).items()}
      )
      expected.update(
          {f'{part}/{k}': v for k, v in _shapes(abstract_state[part]).items()}
      )
    diffs = shape_differences(saved, expected)
    if diffs:
      raise self._mismatch(
          step, 'its network has other shapes:\n  ' + '\n  '.join(diffs)
      )

  def _mismatch(self, step, why):
    saved = self.saved_config(step).get('variant', '?')
    return CheckpointMismatchError(
        f'{self.path(step)} is a checkpoint of another configuration (saved '
        f'variant {saved!r}, this run {self.config.variant!r}); {why}\n'
        'Nothing was changed',
        f'use another --workdir for this config, or move {self.directory} '
        'away to start afresh',
    )

  def restore(self, abstract_state, step=None):
    """The state of `step` (default: the newest readable one, see
    `newest_readable`) with `abstract_state`'s sharding, or None when the
    workdir has no checkpoint."""
    if step is not None:
      return self._restore_step(step, abstract_state)
    steps = self.manager.all_steps()
    if not steps:
      return None
    state, used = newest_readable(
        steps, lambda s: self._restore_step(s, abstract_state), self.directory
    )
    self.unreadable = sorted((s for s in steps if s > used), reverse=True)
    return state

  def _restore_step(self, step, abstract_state):
    self.check_compatible(step, abstract_state)
    try:
      restored = self.manager.restore(
          step,
          args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract_state)
          ),
      )
    except (ValueError, KeyError, TypeError) as e:
      if is_read_failure(e):
        raise
      raise self._mismatch(step, f'restoring it failed: {e}') from e
    return restored['state']

  def wait(self):
    """Blocks until pending async saves are complete on disk."""
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()
