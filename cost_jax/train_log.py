"""Training logs: the stdout progress line, WORKDIR/metrics.jsonl and
TensorBoard events, and the loss-curve PNG (with the validation AUC)."""

import json
import logging
import os
import time

from etils import epath
import numpy as np

# Terms shown on stdout, in this order (every metric goes to the writers).
# `ce_const` is the `ce` of the best constant predictor for the same labels;
# top1_hit / top1_iou score the candidate the tracker would pick.
SHOWN = (
    'loss',
    'coa',
    'reg',
    'ce',
    'ce_const',
    'l1',
    'giou',
    'top1_hit',
    'top1_iou',
)
# '0' disables TensorBoard event files (metrics.jsonl is always written).
TENSORBOARD_ENV = 'COST_JAX_TENSORBOARD'


class MetricWriter:
  """WORKDIR/metrics.jsonl and TensorBoard events (tf.summary, imported
  lazily); only the process that is `enabled` (process 0) writes. The
  workdir may be local or a bucket (gs://...; etils.epath)."""

  def __init__(self, workdir, enabled):
    self.enabled = enabled
    self.jsonl = epath.Path(workdir) / 'metrics.jsonl'
    self._workdir = workdir
    self._tf_writer = None
    self._tf_failed = os.environ.get(TENSORBOARD_ENV, '1') == '0'

  def _tensorboard(self):
    if self._tf_writer is None and not self._tf_failed:
      try:
        # Lazy: TensorFlow (heavy) only when TensorBoard logging is on.
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        tf.config.set_visible_devices([], 'GPU')
        self._tf_writer = (tf, tf.summary.create_file_writer(self._workdir))
      except ImportError as e:
        self._tf_failed = True
        logging.warning(
            'No TensorFlow (%s): metrics go to %s only.', e, self.jsonl
        )
    return self._tf_writer

  def write(self, step, scalars):
    if not self.enabled:
      return
    with self.jsonl.open('a') as f:
      f.write(json.dumps(dict(step=step, **scalars)) + '\n')
    tensorboard = self._tensorboard()
    if tensorboard:
      tf, writer = tensorboard
      with writer.as_default(step=step):
        for name, value in scalars.items():
          tf.summary.scalar(name, value)
      writer.flush()


def format_progress(step, num_steps, steps_per_s, global_batch, scalars):
  """One stdout line: progress, speed, ETA and the loss terms."""
  eta = (num_steps - step) / steps_per_s if steps_per_s > 0 else float('nan')
  eta = time.strftime('%H:%M:%S', time.gmtime(eta)) if np.isfinite(eta) else '?'
  terms = ' '.join(f'{k} {scalars[k]:.4f}' for k in SHOWN if k in scalars)
  return (
      f'step {step}/{num_steps} ({100 * step / num_steps:.1f}%) | '
      f'{steps_per_s:.2f} steps/s {steps_per_s * global_batch:.1f} '
      f'pairs/s | ETA {eta} | {terms}'
  )


class ProgressLog:
  """Averages the fetched metrics of each log window, adds speed and
  learning rates, then writes them and prints one line (process 0)."""

  def __init__(self, writer, config, schedules, num_steps, start, is_chief):
    self.writer, self.schedules = writer, schedules
    self.num_steps, self.is_chief = num_steps, is_chief
    self.global_batch = config.train.batch_size
    self.rows, self.timer = [], (time.time(), start)

  def log(self, done):
    if not self.rows:
      return
    scalars = {
        k: float(np.mean([r[k] for r in self.rows])) for k in self.rows[0]
    }
    scalars.update(
        {f'lr_{g}': float(s(done - 1)) for g, s in self.schedules.items()}
    )
    steps_per_s = (done - self.timer[1]) / max(
        time.time() - self.timer[0], 1e-9
    )
    scalars.update(
        steps_per_s=steps_per_s, pairs_per_s=steps_per_s * self.global_batch
    )
    self.writer.write(done, scalars)
    if self.is_chief:
      print(
          format_progress(
              done, self.num_steps, steps_per_s, self.global_batch, scalars
          ),
          flush=True,
      )
    self.rows, self.timer = [], (time.time(), done)


def read_metric_rows(jsonl_path) -> dict:
  """{step: row} of metrics.jsonl; rows of one step merge (losses and
  validation), and where a resumed run rewrote a step the later value wins."""
  merged = {}
  for line in epath.Path(jsonl_path).read_text().splitlines():
    if line.strip():
      row = json.loads(line)
      merged.setdefault(row['step'], {}).update(row)
  return merged


def save_loss_curve(jsonl_path, png_path):
  """Plots every loss term of metrics.jsonl against the step (Agg PNG), and
  the validation AUC with its baselines on a second axis when logged."""
  jsonl_path, png_path = epath.Path(jsonl_path), epath.Path(png_path)
  if not jsonl_path.exists():
    return None
  # Lazy: matplotlib (slow to import) only when plotting.
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  rows = read_metric_rows(jsonl_path)
  steps = sorted(rows)
  fig, ax = plt.subplots(figsize=(8, 5))
  for term, style in (
      ('loss', '-'),
      ('coa', '-'),
      ('reg', '-'),
      ('ce', '-'),
      ('ce_const', ':'),
  ):
    have = [s for s in steps if term in rows[s]]
    if have:
      label = 'ce of a constant predictor' if term == 'ce_const' else term
      ax.plot(
          have,
          [rows[s][term] for s in have],
          style,
          label=label,
          color='tab:red' if term.startswith('ce') else None,
      )
  ax.set_xlabel('step')
  ax.set_ylabel('loss')
  ax.grid(True, alpha=0.3)
  ax.legend(loc='upper left')
  _plot_validation(ax, rows, steps)
  with png_path.open('wb') as f:
    fig.savefig(f, format='png', dpi=100, bbox_inches='tight')
  plt.close(fig)
  return png_path


def _plot_validation(ax, rows, steps):
  """Validation AUC (and the static / NCC baselines) on a right-hand axis."""
  val = [s for s in steps if 'val_auc' in rows[s]]
  if not val:
    return
  right = ax.twinx()
  right.plot(
      val,
      [rows[s]['val_auc'] for s in val],
      'k-o',
      markersize=3,
      label='validation AUC',
  )
  for name, style in (('ncc', 'r--'), ('static', 'b:')):
    key = f'val_auc_{name}'
    if key in rows[val[-1]]:
      right.axhline(
          rows[val[-1]][key],
          color=style[0],
          linestyle=style[1:],
          label=f'{name} AUC',
      )
  right.set_ylabel('validation AUC (%)')
  right.legend(loc='upper right')
