"""Compare trackers' raw results on a dataset under a toolkit-faithful protocol.

    python -m cost_jax.analyze --dataset vlsot500 --root /data/VL-SOT500 \\
        --results=results/COST --results=results/TransT --protocol=vlsot500 \\
        --out=reports/vlsot500

Each ``--results`` folder holds one tracker's ``<seq>.txt`` files (pytracking
layout; got10k ``<seq>_001.txt`` also works) and optional ``<seq>_time.txt``.
Prints a comparison table, writes ``metrics.json`` (which names the protocol)
and PNG plots.  ``analyze()`` (cost_jax.evaluation.report, which
``--mode=evaluate`` uses too) does the same for sequences already in memory.

    python -m cost_jax.analyze pack --dataset got10k --root /data/GOT-10k \\
        --results runs/cost/eval/got10k-test/results/cost --out cost_got10k.zip

checks one tracker's results and zips them as the GOT-10k / TrackingNet
evaluation server accepts them (``cost_jax.evaluation.packing``).
No JAX: numpy, the dataset readers (numpy + cv2) and, to plot, matplotlib.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from cost_jax import cli
from cost_jax import errors
from cost_jax.evaluation import packing, results_io
from cost_jax.evaluation.protocols import PROTOCOLS
from cost_jax.evaluation.report import DEFAULT_PROTOCOL, analyze, format_table
from input_pipeline.readers import load_dataset

__all__ = ['DEFAULT_PROTOCOL', 'analyze', 'format_table', 'main']

PROGRAM = 'python -m cost_jax.analyze'
PACK_DOC = (
    f"{PROGRAM} pack: check a tracker's results and zip them for the "
    'GOT-10k / TrackingNet evaluation server.'
)


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
