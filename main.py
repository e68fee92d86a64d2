"""COST in JAX: train, evaluate, track a video, or describe the network.

  python main.py --config=configs/cost.py:demo --workdir=runs/demo
  python main.py --config=configs/cost.py --workdir=runs/paper \
      --config.data.roots.lasot=/data/LaSOT ...
  python main.py --config=configs/cost.py:demo --workdir=runs/demo --mode=track \
      --video=clip.mp4 --box=120,80,14,12 --description="the red car on the left"
  python main.py --config=configs/cost.py --mode=describe

A user error (a flag, a missing file, weights of another variant) prints one
line `error: <what>. Fix: <how>` and exits with status 2; a bug shows its
traceback (cost_jax/errors.py).
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from cost_jax import cli
from cost_jax import describe
from cost_jax import distributed
from cost_jax import errors
from cost_jax import evaluate
from cost_jax import run_config
from cost_jax import workflow
from cost_jax.tracking import video

DEFAULT_CONFIG = 'configs/cost.py'
config_flags.DEFINE_config_file(
    'config',
    None,
    f'Config file[:variant,...] (default: {DEFAULT_CONFIG}).',
    lock_config=True,
)
flags.DEFINE_string(
    'workdir', None, 'Run directory: checkpoints, logs, results.'
)
flags.DEFINE_enum(
    'mode', 'train', ['train', 'evaluate', 'track', 'describe'], 'What to run.'
)
flags.DEFINE_string(
    'video',
    None,
    '--mode=track: a video file, a frame folder, a camera '
    'index (0) or a stream URL (rtsp://, http://).',
)
flags.DEFINE_string('box', None, '--mode=track: initial box x,y,w,h (pixels).')
flags.DEFINE_string('description', '', '--mode=track: the target description.')
flags.DEFINE_string(
    'out',
    None,
    '--mode=track: output folder ' '(default WORKDIR/track/<video name>).',
)
flags.DEFINE_bool(
    'show_scores',
    False,
    '--mode=track: draw every candidate and its '
    'score after the Hanning window on tracked.mp4.',
)
flags.DEFINE_bool(
    'select_box',
    False,
    '--mode=track: draw the first box with the mouse '
    '(needs a display and an OpenCV with a GUI) instead of --box.',
)
flags.DEFINE_bool(
    'distributed',
    False,
    'Call jax.distributed.initialize() '
    '(auto-detected on TPU pods and SLURM; env COST_DISTRIBUTED=1).',
)
flags.DEFINE_string('coordinator', None, 'host:port of process 0 (multi-host).')
flags.DEFINE_integer('num_processes', None, 'Number of processes (multi-host).')
flags.DEFINE_integer('process_id', None, 'This process (multi-host).')
FLAGS = flags.FLAGS


def parse_flags(argv):
  """absl's flag parsing; a bad flag is a user error (one line, status 2)."""
  mine = FLAGS.flags_by_module_dict()  # this file: run (argv[0]) or imported
  names = [f.name for m in (__name__, argv[0]) for f in mine.get(m, [])]
  argv = cli.with_config(argv, DEFAULT_CONFIG)
  try:
    return argv[:1] + cli.parse(FLAGS, argv, 'python main.py', __doc__, names)
  except errors.UserError as e:
    print(errors.message(e), file=sys.stderr)
    sys.exit(errors.EXIT_STATUS)


@errors.exits_on_user_error
def main(argv):
  if len(argv) > 1:
    raise errors.InvalidValue(
        f'unexpected arguments {argv[1:]}', 'pass every option as --name=value'
    )
  config = FLAGS.config
  if FLAGS.mode == 'describe':
    describe.describe(config)
    return
  if not FLAGS.workdir:
    raise errors.InvalidValue(
        f'--mode={FLAGS.mode} needs a run directory', 'pass --workdir=DIR'
    )
  distributed.maybe_initialize(
      FLAGS.distributed,
      FLAGS.coordinator,
      FLAGS.num_processes,
      FLAGS.process_id,
  )
  if FLAGS.mode in ('evaluate', 'track'):
    config = run_config.with_checkpoint_config(
        config,
        FLAGS.workdir,
        set(config_flags.get_override_values(FLAGS['config'])),
    )
  if FLAGS.mode == 'train':
    workflow.train_and_evaluate(config, FLAGS.workdir)
  elif FLAGS.mode == 'evaluate':
    evaluate.evaluate(config, FLAGS.workdir)
  elif FLAGS.mode == 'track':
    if not FLAGS.video or not (FLAGS.box or FLAGS.select_box):
      raise errors.InvalidValue(
          '--mode=track needs the video and the target',
          'pass --video=PATH (a video file, a frame folder, a camera index or a stream '
          'URL) and --box=x,y,w,h (the target in the first frame, in pixels) or '
          '--select_box',
      )
    video.track_and_report(
        config,
        FLAGS.workdir,
        FLAGS.video,
        FLAGS.box,
        FLAGS.description,
        FLAGS.out,
        show_scores=FLAGS.show_scores,
        select_box=FLAGS.select_box,
    )


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
