"""The paper's Table 6 ablations on synthetic data.

    python -m cost_jax.ablations --workdir=runs/ablations --seeds=0,1,2 \
        --out=runs/ablations/table.md

`--config=configs/cost.py:demo` (the default) names the config file and the
size every variant is trained at; `--config.FIELD=VALUE` overrides apply to
every variant (e.g. `--config.train.num_steps=200`), with main.py's syntax.

Trains COST, w/o LB (= TransT), w/o [OBJ], w/o CoA and w/o VLT with the demo
budget on the same synthetic training set, for each seed, and evaluates each
on two held-out synthetic test sets:
- language: every distractor has the target's shape and another colour, and
  the target is grey in the first frame, so the template shows its shape but
  not its colour; only the description ("the red square ...") tells the
  target from its look-alikes;
- mixed: the demo's test set (distractors differ in colour or shape).
The training videos use mixed distractors, and half of them start with the
target grey for 20 frames, so a pair's template often lacks the colour its
description names. Writes the mean ± sample standard deviation over the
seeds of AUC, P and P_norm.
"""

import json
import os
import shutil
import sys

from absl import flags
from ml_collections import config_flags
import numpy as np

from cost_jax import cli
from cost_jax import config_files
from cost_jax import errors
from cost_jax import data_roots
from cost_jax import evaluate
from cost_jax import train

VARIANTS = (
    ('COST', ''),
    ('w/o LB (TransT)', 'no_lb'),
    ('w/o [OBJ]', 'no_obj'),
    ('w/o CoA', 'no_coa'),
    ('w/o VLT', 'no_vlt'),
)
TEST_SETS = (('language', 'language'), ('mixed', 'mixed'))
# Training videos: half start with the target grey for 20 frames.
GREY_START = dict(grey_frames=20, grey_fraction=0.5)
METRICS = (('AUC', 'auc'), ('P', 'precision'), ('P_norm', 'norm_precision'))


PROGRAM = 'python -m cost_jax.ablations'
DEFAULT_CONFIG = 'configs/cost.py:demo'


def run_one(get_config, ablation, seed, test_distractors, root):
  """Trains (once per variant and seed) and evaluates on one test set.

  `get_config` maps an ablation ('' = COST) to its ConfigDict.
  """
  config = get_config(ablation)
  config.seed = seed
  config.track.tracker_name = ablation or 'cost'  # Names the plots' curves.
  config.data.synthetic.test_distractors = test_distractors
  config.data.synthetic.update(GREY_START)
  data = os.path.join(root, 'data')  # Shared by every variant and seed.
  config = data_roots.prepare(
      config,
      data,
      roots={
          'train': data_roots.synthetic_root(config, data, 'train'),
          'test': os.path.join(data, f'synthetic_test_{test_distractors}'),
      },
  )
  workdir = os.path.join(root, f'{ablation or "cost"}_seed{seed}')
  train.train(config, workdir)  # Resumes / returns at once when trained.
  metrics = evaluate.evaluate(config, workdir)
  kept = os.path.join(workdir, f'eval_{test_distractors}')
  if os.path.exists(kept):
    shutil.rmtree(kept)
  os.replace(os.path.join(workdir, 'eval'), kept)
  return metrics['trackers'][config.track.tracker_name]['overall']


def table(scores, seeds, variants=VARIANTS):
  """Markdown: one row per variant, mean ± std per test set and metric."""
  head = ['Method'] + [f'{t} {m}' for t, _ in TEST_SETS for m, _ in METRICS]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for label, ablation in variants:
    cells = [label]
    for _, test in TEST_SETS:
      for _, key in METRICS:
        values = [100 * scores[(ablation, s, test)][key] for s in seeds]
        sd = np.std(values, ddof=1) if len(values) > 1 else 0.0  # sample sd
        cells.append(f'{np.mean(values):.1f} ± {sd:.1f}')
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def make_flags(argv=()) -> flags.FlagValues:
  """The command's flags (`argv`: the command line they parse)."""
  fv = flags.FlagValues()
  flags.DEFINE_string(
      'workdir', None, 'one run folder per variant and seed', flag_values=fv
  )
  config_flags.DEFINE_config_file(
      'config',
      None,
      'config file:size every variant is trained at (default '
      f'{DEFAULT_CONFIG}); --config.FIELD=VALUE overrides apply to each',
      flag_values=fv,
      lock_config=True,
      sys_argv=list(argv),
  )
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'seeds', flag_values=fv)
  flags.DEFINE_string(
      'out', '', 'also write the Markdown table here', flag_values=fv
  )
  flags.DEFINE_list(
      'variants',
      [],
      "subset, e.g. 'cost,no_lb' (default: all five)",
      flag_values=fv,
  )
  flags.mark_flag_as_required('workdir', flag_values=fv)
  return fv


def variant_configs(fv):
  """ablation ('' = COST) -> its ConfigDict: the --config file's variant at
  the --config size, with the command line's overrides."""
  path, _, size = fv['config'].config_filename.partition(':')
  get_config = config_files.load_module(path).get_config
  overrides = config_flags.get_override_values(fv['config'])

  def build(ablation):
    config = get_config(','.join(filter(None, [size, ablation])))
    for key, value in overrides.items():
      *parents, leaf = key.split('.')
      node = config
      for name in parents:
        node = node[name]
      node[leaf] = value
    return config

  return build


@errors.exits_on_user_error
def main(argv=None):
  argv = cli.with_config(cli.argv_of(PROGRAM, argv), DEFAULT_CONFIG)
  fv = cli.parse_flags_only(make_flags(argv), argv, PROGRAM, __doc__)
  try:
    seeds = [int(s) for s in fv.seeds]
  except ValueError:
    raise errors.InvalidValue(
        f'--seeds={",".join(fv.seeds)}', 'give integers, e.g. --seeds=0,1,2'
    ) from None
  known = {a or 'cost' for _, a in VARIANTS}
  unknown = set(fv.variants) - known
  if unknown:
    raise errors.InvalidValue(
        f'--variants: {", ".join(sorted(unknown))} unknown',
        f'choose from {", ".join(sorted(known))}',
    )
  wanted = {'' if v == 'cost' else v for v in fv.variants} or {
      a for _, a in VARIANTS
  }
  variants = [(l, a) for l, a in VARIANTS if a in wanted]
  get_config = variant_configs(fv)
  scores = {}
  for _, ablation in variants:
    for seed in seeds:
      for _, test in TEST_SETS:
        scores[(ablation, seed, test)] = run_one(
            get_config, ablation, seed, test, fv.workdir
        )
  text = table(scores, seeds, variants)
  print(text)
  with open(os.path.join(fv.workdir, 'ablations.json'), 'w') as f:
    json.dump(
        {f'{a}|{s}|{t}': v for (a, s, t), v in scores.items()},
        f,
        default=float,
        indent=1,
    )
  if fv.out:
    with open(fv.out, 'w') as f:
      f.write(text + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
