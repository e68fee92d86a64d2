"""Success / precision / normalised-precision curves and per-attribute bars as PNG.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend state),
so it works headless and from threads.  Inputs are the dicts ``evaluate()``
returns (``report['overall']``, ``report['thresholds']``,
``report['per_attribute']``), keyed by tracker name.  Legends show each
tracker's score, best first, as the OTB / LaSOT / MMOT toolkits do.
PNGs are written atomically (`results_io.atomic_write`), locally or to a
URL (gs://..., etils.epath).
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cost_jax.evaluation import results_io

__all__ = [
    'CURVE_KINDS',
    'plot_curves',
    'plot_curve_kind',
    'plot_attribute_bars',
]

# kind -> (curve key, thresholds key, score key, title, x label, y label, score format)
CURVE_KINDS = {
    'success': (
        'success_curve',
        'success',
        'auc',
        'Success plot',
        'Overlap threshold',
        'Success rate',
        'AUC',
    ),
    'precision': (
        'precision_curve',
        'precision',
        'precision',
        'Precision plot',
        'Location error threshold (pixels)',
        'Precision',
        'P',
    ),
    'norm_precision': (
        'norm_precision_curve',
        'norm_precision',
        'norm_precision',
        'Normalized precision plot',
        'Normalized location error threshold',
        'Normalized precision',
        'P_norm',
    ),
    'complete_success': (
        'complete_success_curve',
        'complete_success',
        'cauc',
        'Complete success plot',
        'CIoU threshold',
        'Complete success rate',
        'cAUC',
    ),
}
_STYLES = ('-', '--', '-.', ':')


def _new_axes(figsize=(6.4, 4.8)):
  fig = Figure(figsize=figsize, dpi=120)
  FigureCanvasAgg(fig)
  return fig, fig.add_subplot(1, 1, 1)


def _save(fig, out_path) -> str:
  out_path = os.fspath(out_path)
  fig.tight_layout()
  results_io.atomic_write(out_path, lambda f: fig.savefig(f, format='png'))
  return out_path


def _color(i: int):
  """Distinct colours: tab10 for the first ten lines, then tab20."""
  return colormaps['tab10'](i) if i < 10 else colormaps['tab20']((i - 10) % 20)


def plot_curves(
    entries,
    out_path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    score_label: str = '',
    x_max: float | None = None,
) -> str:
  """One line per ``(name, thresholds, curve, score)`` entry, legend sorted best first.

  Returns the PNG path.  NaN scores sort last and print as 'n/a'.
  """
  entries = sorted(
      entries,
      key=lambda e: -np.inf if e[3] is None or np.isnan(e[3]) else -e[3],
  )
  fig, ax = _new_axes()
  for i, (name, thresholds, curve, score) in enumerate(entries):
    shown = 'n/a' if score is None or np.isnan(score) else f'{score:.3f}'
    ax.plot(
        thresholds,
        curve,
        _STYLES[(i // 10) % len(_STYLES)],
        color=_color(i),
        linewidth=2,
        label=f'[{shown}] {name}',
    )
  ax.set_xlim(
      0,
      x_max
      if x_max is not None
      else max((e[1][-1] for e in entries), default=1),
  )
  ax.set_ylim(0, 1.0)
  ax.grid(True, linestyle=':', linewidth=0.8)
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  legend_title = f'{score_label} (best first)' if score_label else None
  ax.legend(
      loc='best', fontsize='small', title=legend_title, title_fontsize='small'
  )
  return _save(fig, out_path)


def plot_curve_kind(
    overall_by_tracker: dict,
    thresholds: dict,
    kind: str,
    out_path,
    title_suffix: str = '',
) -> str:
  """A ``CURVE_KINDS`` plot from ``{tracker: report['overall']}`` and ``report['thresholds']``."""
  curve_key, thr_key, score_key, title, xlabel, ylabel, label = CURVE_KINDS[
      kind
  ]
  entries = [
      (
          name,
          np.asarray(thresholds[thr_key]),
          np.asarray(o[curve_key]),
          o[score_key],
      )
      for name, o in overall_by_tracker.items()
  ]
  return plot_curves(
      entries,
      out_path,
      title=title + title_suffix,
      xlabel=xlabel,
      ylabel=ylabel,
      score_label=label,
  )


def plot_attribute_bars(
    per_attribute_by_tracker: dict,
    out_path,
    metric: str = 'auc',
    title: str = '',
) -> str:
  """Grouped bars: one group per attribute, one bar per tracker, for ``metric``.

  Attribute labels carry the number of sequences; trackers are ordered by
  their mean over attributes, best first.
  """
  attrs = sorted({a for per in per_attribute_by_tracker.values() for a in per})
  if not attrs:
    raise ValueError('no per-attribute results to plot')

  def value(tracker, attr):
    v = per_attribute_by_tracker[tracker].get(attr, {}).get(metric)
    return np.nan if v is None else float(v)

  def mean_value(tracker):
    values = np.array([value(tracker, a) for a in attrs])
    return (
        float(np.mean(values[~np.isnan(values)]))
        if np.any(~np.isnan(values))
        else -1.0
    )

  trackers = sorted(per_attribute_by_tracker, key=mean_value, reverse=True)
  width = 0.8 / len(trackers)
  fig, ax = _new_axes(
      figsize=(max(6.4, 0.55 * len(attrs) * max(1, len(trackers) / 2) + 2), 4.8)
  )
  x = np.arange(len(attrs))
  for i, t in enumerate(trackers):
    ax.bar(
        x - 0.4 + width * (i + 0.5),
        [value(t, a) for a in attrs],
        width,
        color=_color(i),
        label=t,
    )
  pers = list(per_attribute_by_tracker.values())
  counts = [
      next((per[a]['n_sequences'] for per in pers if a in per), 0)
      for a in attrs
  ]
  ax.set_xticks(x)
  ax.set_xticklabels(
      [f'{a} ({n})' for a, n in zip(attrs, counts)],
      rotation=45,
      ha='right',
      fontsize='small',
  )
  ax.set_ylim(0, 1.0)
  ax.set_ylabel(metric)
  ax.grid(True, axis='y', linestyle=':', linewidth=0.8)
  ax.set_title(title or f'{metric} per attribute')
  ax.legend(fontsize='small')
  return _save(fig, out_path)
