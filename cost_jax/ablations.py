"""The paper's Table 6 ablations on synthetic data.

    python -m cost_jax.ablations --workdir=runs/ablations --seeds=0,1,2 \
        --out=runs/ablations/table.md

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

import argparse
import json
import os
import shutil

import numpy as np

from cost_jax import config_files
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


def run_one(
    get_config, ablation, seed, test_distractors, root, steps, size='demo'
):
  """Trains (once per variant and seed) and evaluates on one test set.

  `get_config` is the config file's: variant string -> ConfigDict.
  """
  config = get_config(','.join(filter(None, [size, ablation])))
  config.seed = seed
  config.track.tracker_name = ablation or 'cost'  # Names the plots' curves.
  if steps:
    config.train.num_steps = steps
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


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--workdir', required=True)
  ap.add_argument(
      '--config',
      default='configs/cost.py',
      help='config file whose variants are trained',
  )
  ap.add_argument('--seeds', default='0,1,2')
  ap.add_argument('--steps', type=int, default=0, help='0 = the demo budget')
  ap.add_argument('--out', default='')
  ap.add_argument('--size', default='demo', help='config size: demo | smoke')
  ap.add_argument(
      '--variants',
      default='',
      help="subset, e.g. 'cost,no_lb' (default: all five)",
  )
  args = ap.parse_args(argv)
  try:
    get_config = config_files.load_module(args.config).get_config
  except FileNotFoundError as e:
    ap.error(f'--config: {e}')
  seeds = [int(s) for s in args.seeds.split(',')]
  wanted = (
      set(args.variants.replace('cost', '').split(','))
      if args.variants
      else {a for _, a in VARIANTS}
  )
  variants = [(l, a) for l, a in VARIANTS if a in wanted]
  scores = {}
  for _, ablation in variants:
    for seed in seeds:
      for _, test in TEST_SETS:
        scores[(ablation, seed, test)] = run_one(
            get_config,
            ablation,
            seed,
            test,
            args.workdir,
            args.steps,
            args.size,
        )
  text = table(scores, seeds, variants)
  print(text)
  with open(os.path.join(args.workdir, 'ablations.json'), 'w') as f:
    json.dump(
        {f'{a}|{s}|{t}': v for (a, s, t), v in scores.items()},
        f,
        default=float,
        indent=1,
    )
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  main()
