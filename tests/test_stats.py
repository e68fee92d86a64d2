"""Dataset statistics: Eq. (1) relative speed, Table 1 columns, the small-object test, the CLI."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from input_pipeline import synthetic
from input_pipeline.sequence import Sequence
from input_pipeline.stats import box_sizes, dataset_stats, relative_speed, sequence_stats

NAN = np.nan
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_relative_speed_matches_hand_computation_of_eq1():
  boxes = np.array([[0, 0, 4, 4], [3, 4, 4, 4], [3, 4, 9, 9]], float)
  # t=1: centres (2,2)->(5,6): |dp| = 5, sqrt(s0 s1) = 4 -> 1.25
  # t=2: centres (5,6)->(7.5,8.5): |dp| = sqrt(12.5), sqrt(4*9) = 6
  d1, d2 = 5 / 4, math.sqrt(12.5) / 6
  assert relative_speed(boxes) == pytest.approx((d1 + d2) / 2)
  per_frame = relative_speed(boxes, per_frame=True)
  assert np.isnan(per_frame[0]) and per_frame[1:] == pytest.approx([d1, d2])
  # Timestamps divide by T_t - T_{t-1}.
  assert relative_speed(boxes, timestamps=[0, 2, 3]) == pytest.approx(
      (d1 / 2 + d2) / 2
  )


def test_relative_speed_skips_frames_next_to_absent_or_invalid_ones():
  boxes = np.array(
      [[0, 0, 4, 4], [3, 4, 4, 4], [NAN] * 4, [3, 4, 9, 9], [3, 4, 0, 9]], float
  )
  assert relative_speed(boxes) == pytest.approx(
      1.25
  )  # only the (0, 1) pair is defined
  assert relative_speed(
      boxes, visible=[True, False, True, True, True]
  ) != relative_speed(boxes)
  assert math.isnan(relative_speed(boxes[:1]))
  assert box_sizes(boxes)[[0, 3]].tolist() == [4.0, 9.0] and np.isnan(
      box_sizes(boxes)[2]
  )


def _seq(
    name, boxes, image_size, language='', cls='', attributes=None, absent=False
):
  boxes = np.asarray(boxes, float)
  visible = ~np.isnan(boxes).any(1)
  return Sequence(
      name,
      'fake',
      [f'{name}/{i}.jpg' for i in range(len(boxes))],
      boxes,
      visible,
      language,
      attributes or {},
      cls,
      {'image_size': image_size, 'absent_labels': absent},
  )


def test_dataset_stats_table1_columns_and_small_object_test():
  small = _seq(
      'small',
      [[10, 10, 10, 10], [12, 10, 10, 10], [NAN] * 4],
      (2000, 2000),
      'a bird',
      'bird',
      {'FM': True, 'SD': False},
      absent=True,
  )
  big = _seq(
      'big',
      [[0, 0, 40, 40], [0, 0, 40, 40]],
      (100, 100),
      '',
      'car',
      {'FM': False},
  )
  stats = dataset_stats([small, big])
  assert (stats['videos'], stats['classes'], stats['attributes']) == (2, 2, 2)
  assert (
      stats['min_frames'],
      stats['mean_frames'],
      stats['max_frames'],
      stats['total_frames'],
  ) == (2, 2.5, 3, 5)
  assert stats['average_size'] == pytest.approx(25.0)
  assert stats['average_relative_speed'] == pytest.approx((0.2 + 0.0) / 2)
  assert stats['absent_labels'] and stats['language']
  assert stats['attribute_counts'] == {'FM': 1, 'SD': 0}
  per_video = {v['name']: v for v in stats['per_video']}
  assert per_video['small']['small'] and not per_video['big']['small']
  assert per_video['small']['relative_size'] == pytest.approx(10 / 2000)
  assert per_video['small']['absent_frames'] == 1
  area = sequence_stats(big, relative_size='area')
  assert area['relative_size'] == pytest.approx(1600 / 10000)


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('stats') / 'syn')
  synthetic.generate(root, 'vlsot500', 10, 0, frames=30)
  return root


def test_stats_cli_prints_table1_and_writes_json(synthetic_root, tmp_path):
  out = str(tmp_path / 'stats.json')
  proc = subprocess.run(
      [
          sys.executable,
          '-m',
          'input_pipeline.stats',
          '--dataset',
          'vlsot500',
          '--root',
          synthetic_root,
          '--json',
          out,
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      check=True,
  )
  header = proc.stdout.splitlines()[0]
  for column in (
      'Videos',
      'Classes',
      'Attributes',
      'Min frame',
      'Mean frame',
      'Max frame',
      'Total frames',
      'Average size',
      'Average relative speed',
      'Absent labels',
      'Language',
  ):
    assert column in header
  assert 'Small-object test' in proc.stdout
  with open(out) as f:
    stats = json.load(f)
  assert stats['videos'] == 10 and stats['total_frames'] == 300
  assert stats['absent_labels'] is True and stats['language'] is True
  assert stats['attributes'] == 17 and 0 < stats['average_size'] < 22
  assert (
      len(stats['per_video']) == 10 and stats['attribute_counts']['NAO'] == 10
  )
