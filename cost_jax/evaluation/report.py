"""One comparison of trackers on a dataset: scores under a protocol, the
text table, ``metrics.json`` and the plots (what ``python -m cost_jax.analyze``
and ``--mode=evaluate`` write). numpy only; matplotlib when plotting.
"""

from __future__ import annotations

import json
import math
import os

from cost_jax.evaluation import results_io
from cost_jax.evaluation.protocols import get_protocol
from cost_jax.evaluation.scoring import evaluate

__all__ = ['DEFAULT_PROTOCOL', 'analyze', 'format_table']

# Dataset name -> the protocol of the toolkit its leaderboard uses.
DEFAULT_PROTOCOL = {
    'vlsot500': 'vlsot500',
    'vlsot230': 'vlsot500',
    'vlsot270': 'vlsot500',
    'synthetic': 'vlsot500',
    'webuav3m': 'webuav3m',
    'lasot': 'lasot',
    'lasot_ext': 'lasot',
    'tnl2k': 'tnl2k',
    'otb99_lang': 'otb',
    'got10k': 'got10k',
}
_TABLE = (
    ('AUC', 'auc'),
    ('P', 'precision'),
    ('P_norm', 'norm_precision'),
    ('cAUC', 'cauc'),
    ('mACC', 'macc'),
)
# GOT-10k's own columns (the got10k toolkit's report: AO and success rates).
_GOT10K_TABLE = (
    ('AO', 'ao'),
    ('SR0.5', 'success_rate_50'),
    ('SR0.75', 'success_rate_75'),
)


def _jsonable(obj):
  """Plain-JSON copy: NaN / inf become null, numpy scalars become Python numbers."""
  if isinstance(obj, dict):
    return {str(k): _jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v) for v in obj]
  if hasattr(obj, 'item') and not isinstance(obj, (str, bytes)):
    obj = obj.item()
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


def _write_json(path, data) -> None:
  text = json.dumps(_jsonable(data), indent=1, allow_nan=False)
  results_io.atomic_write_text(path, text + '\n')


def _make_plots(reports: dict, out_dir: str, title_suffix: str) -> dict:
  # Lazy: matplotlib (slow to import) only when plotting.
  from cost_jax.evaluation import plots  # pylint: disable=g-import-not-at-top

  first = next(iter(reports.values()))
  overall = {name: r['overall'] for name, r in reports.items()}
  paths = {
      kind: plots.plot_curve_kind(
          overall,
          first['thresholds'],
          kind,
          os.path.join(out_dir, f'{kind}.png'),
          title_suffix,
      )
      for kind in plots.CURVE_KINDS
  }
  per_attr = {
      name: r['per_attribute']
      for name, r in reports.items()
      if r['per_attribute']
  }
  if per_attr:
    scaled = any(
        e.get('scale', 1.0) != 1.0
        for per in per_attr.values()
        for e in per.values()
    )
    note = (
        '\n(toolkit convention: attribute sums divided by all sequences)'
        if scaled
        else ''
    )
    paths['attributes_auc'] = plots.plot_attribute_bars(
        per_attr,
        os.path.join(out_dir, 'attributes_auc.png'),
        'auc',
        title=f'AUC per attribute{title_suffix}{note}',
    )
  return paths


def analyze(
    sequences,
    results_by_tracker: dict,
    protocol,
    out_dir,
    *,
    times_by_tracker: dict | None = None,
    attributes: bool = True,
    title: str = '',
    plots: bool = True,
    timing_by_tracker: dict | None = None,
) -> dict:
  """Scores every tracker, writes ``<out_dir>/metrics.json`` and PNG plots.

  ``results_by_tracker`` maps tracker name -> {sequence name -> (N, 4) boxes};
  ``times_by_tracker`` optionally maps tracker name -> {sequence name -> seconds};
  ``timing_by_tracker`` tracker name -> how they were measured
  (``results_io.read_timing``; absent: one stream), shown beside the FPS.
  Returns the metrics dict (also written to disk).
  """
  p = get_protocol(protocol)
  sequences = list(sequences)
  if not results_by_tracker:
    raise ValueError('no trackers to analyze')
  times_by_tracker = times_by_tracker or {}
  reports = {
      name: evaluate(
          res,
          sequences,
          p,
          attributes=attributes,
          times=times_by_tracker.get(name),
      )
      for name, res in results_by_tracker.items()
  }
  for name, report in reports.items():
    report['timing'] = results_io.timing_label(
        (timing_by_tracker or {}).get(name)
    )
  out_dir = os.fspath(out_dir)  # local or a URL: results_io writes either
  metrics = {
      'protocol': p.name,
      'toolkit': p.toolkit,
      'description': p.description,
      'title': title,
      'n_sequences': len(sequences),
      'trackers': reports,
  }
  suffix = f' on {title}' if title else ''
  metrics['plots'] = _make_plots(reports, out_dir, suffix) if plots else {}
  metrics['table'] = format_table(metrics)
  _write_json(os.path.join(out_dir, 'metrics.json'), metrics)
  return metrics


def format_table(metrics: dict) -> str:
  """Text table (percent) of the trackers in ``metrics``, best AUC (GOT-10k: AO) first.

  The FPS column is followed by what it measured: ``single-stream`` or
  ``batched xB`` (each sequence's share of a step over B sequences).
  """
  reports = metrics['trackers']
  columns = _GOT10K_TABLE if metrics['protocol'] == 'got10k' else _TABLE
  rows = sorted(
      reports.items(), key=lambda kv: -_num(kv[1]['overall'][columns[0][1]])
  )
  has_fps = any(r['overall'].get('fps') is not None for _, r in rows)
  header = (
      ['Tracker']
      + [h for h, _ in columns]
      + (['FPS', 'FPS measured'] if has_fps else [])
  )
  lines = [
      [name]
      + [_pct(r['overall'][k]) for _, k in columns]
      + ([_fps(r['overall'].get('fps')), _timing(r)] if has_fps else [])
      for name, r in rows
  ]
  widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]

  def fmt(cells):
    return '  '.join(
        str(c).ljust(w) if i == 0 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths))
    )

  title = (
      f"protocol: {metrics['protocol']}  ({metrics['n_sequences']} sequences; "
      f'scores in %)'
  )
  return '\n'.join(
      [title, fmt(header), fmt(['-' * w for w in widths])]
      + [fmt(r) for r in lines]
  )


def _timing(report: dict) -> str:
  return (
      report.get('timing', 'single-stream')
      if report['overall'].get('fps')
      else ''
  )


def _num(v) -> float:
  return (
      -1.0
      if v is None or (isinstance(v, float) and math.isnan(v))
      else float(v)
  )


def _pct(v) -> str:
  return (
      'n/a'
      if v is None or (isinstance(v, float) and math.isnan(v))
      else f'{100 * v:.1f}'
  )


def _fps(v) -> str:
  return 'n/a' if v is None else f'{v:.1f}'
