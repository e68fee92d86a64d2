"""COST in JAX: train, evaluate, track or describe.

  python main.py --config=configs/cost.py:demo --workdir=runs/demo
  python main.py --config=configs/cost.py --mode=describe
"""

import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

config_flags.DEFINE_config_file(
    'config', 'configs/cost.py', 'Config file[:variant,...].', lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory (checkpoints, logs, results).')
flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'track', 'describe'],
                  'What to run.')
FLAGS = flags.FLAGS

MODES = {
    'describe': ('cost_jax.describe', 'describe', False),
}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  module_name, fn_name, needs_workdir = MODES[FLAGS.mode]
  if needs_workdir and not FLAGS.workdir:
    raise app.UsageError(f'--mode={FLAGS.mode} needs --workdir=DIR.')
  module = __import__(module_name, fromlist=[fn_name])
  if needs_workdir:
    os.makedirs(FLAGS.workdir, exist_ok=True)
    logging.get_absl_handler().use_absl_log_file('log', FLAGS.workdir)
    getattr(module, fn_name)(FLAGS.config, FLAGS.workdir)
  else:
    getattr(module, fn_name)(FLAGS.config)


if __name__ == '__main__':
  app.run(main)
