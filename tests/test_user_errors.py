"""User errors through main.py: one line `error: <what>. Fix: <how>`, exit
status 2, no traceback (cost_jax/errors.py); a bug keeps its traceback."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from cost_jax import errors
from input_pipeline import synthetic
from tests import batches
from tests.test_tracker import save_checkpoint

SMOKE = 'configs/cost.py:smoke'


@pytest.fixture(scope='module')
def inputs(smoke_model, tmp_path_factory):
  """{'workdir': a smoke checkpoint, 'frames': a 96x72 frame folder,
  'dataset': a synthetic set whose ground truth has a malformed line 2}."""
  config, _, _, variables = smoke_model
  root = tmp_path_factory.mktemp('user_errors')
  save_checkpoint(str(root / 'run'), config, variables)
  (root / 'frames').mkdir()
  for i in range(3):
    frame = np.full((72, 96, 3), 90, np.uint8)
    frame[30:42, 10 + 3 * i : 22 + 3 * i] = (0, 0, 230)
    cv2.imwrite(str(root / 'frames' / f'{i + 1:04d}.png'), frame)
  synthetic.generate(
      str(root / 'dataset'), num_videos=1, frames=3, size=(96, 72), seed=3
  )
  [gt] = (root / 'dataset').glob('*/*/groundtruth_rect.txt')
  lines = gt.read_text().splitlines()
  lines[1] = '12,abc,4,5'
  gt.write_text('\n'.join(lines) + '\n')
  return {
      k: str(root / v)
      for k, v in (
          ('workdir', 'run'),
          ('frames', 'frames'),
          ('dataset', 'dataset'),
      )
  }


def track(inputs, box='10,30,12,12', video=None, config=SMOKE):
  return [
      f'--config={config}',
      f'--workdir={inputs["workdir"]}',
      '--mode=track',
      f'--video={video or inputs["frames"]}',
      f'--box={box}',
  ]


def evaluate(inputs, root):
  return [
      f'--config={SMOKE}',
      f'--workdir={inputs["workdir"]}',
      '--mode=evaluate',
      f'--config.data.eval_root={root}',
  ]


CASES = {
    'nan_box': (lambda d: track(d, box='nan,1,2,3'), 'has a NaN'),
    'outside_box': (
        lambda d: track(d, box='500,400,10,10'),
        'lies outside the 96x72 image',
    ),
    'three_number_box': (
        lambda d: track(d, box='1,2,3'),
        "--box='1,2,3' is not 4 numbers",
    ),
    'missing_video': (
        lambda d: track(d, video=d['frames'] + '/none.mp4'),
        'none.mp4 does not exist',
    ),
    'missing_eval_root': (
        lambda d: evaluate(d, d['dataset'] + '_none'),
        'dataset root not found',
    ),
    'missing_train_roots': (
        lambda d: ['--config=configs/cost.py', f'--workdir={d["workdir"]}_p'],
        '--config.data.roots.lasot=DIR',
    ),
    'malformed_ground_truth': (
        lambda d: evaluate(d, d['dataset']),
        "groundtruth_rect.txt, line 2: cannot read 'abc'",
    ),
    'checkpoint_of_another_variant': (
        lambda d: track(d, config=SMOKE + ',no_lb'),
        "trained as variant 'smoke' with another architecture: "
        'model.language: trained with True, given False',
    ),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_main_prints_one_line_and_exits_2(inputs, case):
  args, what = CASES[case]
  proc = subprocess.run(
      [sys.executable, 'main.py', *args(inputs)],
      cwd=batches.ROOT,
      env=batches.subprocess_env(devices=1),
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
  )
  lines = [l for l in proc.stderr.splitlines() if l.startswith('error: ')]
  assert proc.returncode == errors.EXIT_STATUS, proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  assert (
      len(lines) == 1 and what in lines[0] and errors.FIX in lines[0]
  ), proc.stderr[-3000:]


def test_a_bug_keeps_its_traceback(capsys):
  @errors.exits_on_user_error
  def main():
    return {}['missing']

  with pytest.raises(KeyError):
    main()
  assert capsys.readouterr().err == ''


def test_user_error_and_os_error_messages():
  error = errors.InvalidValue('the box is empty.', 'give w, h > 0')
  assert isinstance(error, ValueError)
  assert errors.message(error) == 'error: the box is empty. Fix: give w, h > 0'
  assert errors.message(FileNotFoundError('no file\n x')) == (
      'error: no file x. Fix: check that the path exists and that you may '
      'read and write it'
  )
