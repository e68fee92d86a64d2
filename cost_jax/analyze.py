"""Compare trackers' raw results on a dataset under a toolkit-faithful protocol.

    python -m cost_jax.analyze --dataset vlsot500 --root /data/VL-SOT500 \\
        --results=results/COST --results=results/TransT --protocol=vlsot500 \\
        --out=reports/vlsot500

Each ``--results`` folder holds one tracker's ``<seq>.txt`` files (pytracking
layout; got10k ``<seq>_001.txt`` also works) and optional ``<seq>_time.txt``.
Prints a comparison table, writes ``metrics.json`` (which names the protocol)
and PNG plots.  ``analyze()`` does the same for sequences already in memory.

    python -m cost_jax.analyze pack --dataset got10k --root /data/GOT-10k \\
        --results runs/cost/eval/got10k-test/results/cost --out cost_got10k.zip

checks one tracker's results and zips them as the GOT-10k / TrackingNet
evaluation server accepts them (``cost_jax.evaluation.packing``).
No JAX: numpy, the dataset readers (numpy + cv2) and, to plot, matplotlib.
"""

from __future__ import annotations

import json
import math
import os
import sys

from absl import flags

from cost_jax import cli
from cost_jax import errors
from cost_jax.evaluation import packing, results_io
from cost_jax.evaluation.protocols import PROTOCOLS, get_protocol
from cost_jax.evaluation.scoring import evaluate
from input_pipeline.readers import load_dataset

__all__ = ['DEFAULT_PROTOCOL', 'analyze', 'format_table', 'main']

PROGRAM = 'python -m cost_jax.analyze'
PACK_DOC = (
    f"{PROGRAM} pack: check a tracker's results and zip them for the "
    'GOT-10k / TrackingNet evaluation server.'
)

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


def _tracker_names(dirs: list[str]) -> list[str]:
  names = [os.path.basename(os.path.normpath(d)) for d in dirs]
  if len(set(names)) < len(
      names
  ):  # same folder name twice: qualify with the parent
    names = [
        os.path.join(os.path.basename(os.path.dirname(os.path.normpath(d))), n)
        for d, n in zip(dirs, names)
    ]
  return names


def make_flags(command=None) -> flags.FlagValues:
  """The flags of the analysis (`command` None) or of `pack`."""
  fv = flags.FlagValues()
  if command == 'pack':
    flags.DEFINE_enum(
        'dataset',
        None,
        sorted(packing.SERVERS),
        'got10k: <seq>/<seq>_001.txt + <seq>_time.txt; trackingnet: <seq>.txt',
        flag_values=fv,
    )
    flags.DEFINE_string(
        'results',
        None,
        "the tracker's results folder (<seq>.txt or the got10k layout)",
        flag_values=fv,
    )
    flags.DEFINE_string('out', None, 'the zip file to write', flag_values=fv)
    flags.DEFINE_string(
        'root', None, 'dataset root: its sequences are expected', flag_values=fv
    )
    flags.DEFINE_string(
        'split', 'test', 'dataset split with --root', flag_values=fv
    )
    flags.DEFINE_string(
        'list',
        None,
        'instead of --root: one sequence name (and frame count) per line',
        flag_values=fv,
    )
    flags.mark_flags_as_required(['dataset', 'results', 'out'], flag_values=fv)
    return fv
  flags.DEFINE_string(
      'dataset',
      None,
      'dataset name known to input_pipeline.readers',
      flag_values=fv,
  )
  flags.DEFINE_string('root', None, 'dataset root folder', flag_values=fv)
  flags.DEFINE_string('split', 'test', 'dataset split', flag_values=fv)
  flags.DEFINE_multi_string(
      'results',
      None,
      "a folder of one tracker's raw results (its name is the tracker's); "
      'repeat the flag for each tracker',
      flag_values=fv,
  )
  flags.DEFINE_enum(
      'protocol',
      None,
      sorted(PROTOCOLS),
      "scoring protocol (default: the dataset toolkit's, else pytracking)",
      flag_values=fv,
  )
  flags.DEFINE_string(
      'out',
      None,
      'output folder for metrics.json and PNG plots',
      flag_values=fv,
  )
  flags.DEFINE_bool(
      'skip_missing',
      False,
      'score only the sequences that every tracker has results for',
      flag_values=fv,
  )
  flags.DEFINE_bool(
      'allow_length_mismatch',
      False,
      "let the protocol's own length rule apply instead of failing",
      flag_values=fv,
  )
  flags.DEFINE_bool(
      'no_attributes', False, 'skip per-attribute scores', flag_values=fv
  )
  for name in ('skip_missing', 'allow_length_mismatch', 'no_attributes'):
    # The earlier hyphenated spellings stay accepted.
    flags.DEFINE_alias(name.replace('_', '-'), name, flag_values=fv)
  flags.mark_flags_as_required(
      ['dataset', 'root', 'results', 'out'], flag_values=fv
  )
  return fv


def _parse(argv, command=None):
  """The parsed flags of `argv` (argv[0]: the program)."""
  doc = PACK_DOC if command else __doc__
  return cli.parse_flags_only(make_flags(command), argv, argv[0], doc)


def _expected_sequences(args) -> dict:
  if args.list:
    return packing.read_sequence_list(args.list)
  if not args.root:
    raise packing.PackError(
        'no sequence list to check the results against',
        'pass --root=DATASET_ROOT (or --list=FILE)',
    )
  return {
      s.name: len(s)
      for s in load_dataset(args.dataset, args.root, split=args.split)
  }


def pack_main(argv) -> int:
  """``python -m cost_jax.analyze pack ...``; user errors: one line, exit status 2."""
  args = _parse([f'{PROGRAM} pack', *argv], 'pack')
  if not os.path.isdir(args.results):
    raise packing.PackError(
        f'--results {args.results} is not a folder',
        "give the tracker's results folder",
    )
  members = packing.pack(
      args.results, _expected_sequences(args), args.dataset, args.out
  )
  print(
      f'wrote {args.out}: {len(members)} files for the {packing.SERVERS[args.dataset].name} '
      'server'
  )
  return 0


@errors.exits_on_user_error
def main(argv=None) -> int:
  """The CLI; a user error prints one line `error: <what>. Fix: <how>` (cost_jax.errors)
  and returns status 2, a bug raises."""
  argv = cli.argv_of(PROGRAM, argv)[1:]
  if argv[:1] == ['pack']:
    return pack_main(argv[1:])
  args = _parse([PROGRAM, *argv])
  protocol = args.protocol or DEFAULT_PROTOCOL.get(args.dataset, 'pytracking')
  sequences = list(load_dataset(args.dataset, args.root, split=args.split))
  names = _tracker_names(args.results)
  loaded = {
      n: results_io.load_tracker_results(
          d,
          sequences,
          strict_length=not args.allow_length_mismatch,
          skip_missing=args.skip_missing,
      )
      for n, d in zip(names, args.results)
  }
  if args.skip_missing:
    common = set.intersection(*(set(boxes) for boxes, _ in loaded.values()))
    print(
        f'scoring {len(common)} / {len(sequences)} sequences '
        f'(those with results from every tracker)'
    )
    sequences = [s for s in sequences if s.name in common]
  metrics = analyze(
      sequences,
      {n: b for n, (b, _) in loaded.items()},
      protocol,
      args.out,
      times_by_tracker={n: t for n, (_, t) in loaded.items()},
      timing_by_tracker={
          n: results_io.read_timing(d) for n, d in zip(names, args.results)
      },
      attributes=not args.no_attributes,
      title=f'{args.dataset} ({args.split})',
  )
  print(metrics['table'])
  print(
      f"wrote {os.path.join(args.out, 'metrics.json')} and {len(metrics['plots'])} plots"
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
