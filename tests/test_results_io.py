"""Raw results files: round trip, separators, empty predictions, errors, layouts, atomicity."""

import os
from types import SimpleNamespace

import numpy as np
import pytest

from cost_jax.evaluation import results_io as io


def test_round_trip_with_empty_predictions(tmp_path):
  boxes = np.array(
      [[1.5, 2.25, 30, 40], [np.nan] * 4, [0, 0, 0, 0], [-3.125, 4, 5.5, 6]]
  )
  for empty in ('nan', '0'):
    path = tmp_path / f'seq_{empty}.txt'
    io.write_boxes(path, boxes, empty=empty)
    back = io.read_boxes(path, expected_len=4)
    np.testing.assert_array_equal(
        back, boxes
    )  # NaN == NaN under assert_array_equal
  assert (tmp_path / 'seq_0.txt').read_text().splitlines()[1] == '0'
  assert (tmp_path / 'seq_nan.txt').read_text().splitlines()[
      0
  ] == '1.500,2.250,30.000,40.000'
  np.testing.assert_allclose(
      np.loadtxt(tmp_path / 'seq_nan.txt', delimiter=','), boxes
  )


def test_wrong_line_count_names_file_expected_and_actual(tmp_path):
  path = tmp_path / 'trk' / 'car-1.txt'
  io.write_boxes(path, np.ones((3, 4)))
  with pytest.raises(io.ResultsLengthError) as err:
    io.read_boxes(path, expected_len=5)
  msg = str(err.value)
  assert str(path) in msg and '5' in msg and '3' in msg
  assert (err.value.expected, err.value.actual) == (5, 3)


@pytest.mark.parametrize(
    'text',
    [
        '1,2,3,4\n5,6,7,8\n',
        '1\t2\t3\t4\n5\t6\t7\t8\n',
        '1 2 3 4\n5  6 7 8\n',
        '1, 2,\t3 4\r\n5,6,7,8\r\n\n\n',  # mixed separators, CRLF, trailing blank lines
    ],
)
def test_separators(tmp_path, text):
  path = tmp_path / 's.txt'
  path.write_text(text)
  np.testing.assert_array_equal(
      io.read_boxes(path, 2), [[1, 2, 3, 4], [5, 6, 7, 8]]
  )


def test_empty_prediction_lines_and_bad_lines(tmp_path):
  path = tmp_path / 's.txt'
  path.write_text('1,2,3,4\n\n0\nnan,nan,nan,nan\n0,0,0,0\n')
  b = io.read_boxes(path)
  assert np.isnan(b[1:4]).all() and (b[4] == 0).all() and len(b) == 5
  path.write_text('1,2,3,4\n1,2,3\n')
  with pytest.raises(
      io.ResultsFormatError, match=r's\.txt, line 2: expected 4 numbers'
  ):
    io.read_boxes(path)
  path.write_text('1,2,x,4\n')
  with pytest.raises(io.ResultsFormatError, match='line 1'):
    io.read_boxes(path)


def test_atomic_write_leaves_no_temp_and_overwrites(tmp_path):
  path = tmp_path / 'a' / 'b.txt'
  io.write_boxes(path, np.ones((2, 4)))
  io.write_boxes(path, np.zeros((1, 4)))
  assert io.read_boxes(path).shape == (1, 4)
  assert os.listdir(path.parent) == ['b.txt']


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
  path = tmp_path / 'b.txt'
  io.write_boxes(path, np.ones((2, 4)))

  def boom(*_):
    raise OSError('disk full')

  monkeypatch.setattr(os, 'replace', boom)
  with pytest.raises(OSError):
    io.write_boxes(path, np.zeros((5, 4)))
  assert io.read_boxes(path).shape == (2, 4) and os.listdir(tmp_path) == [
      'b.txt'
  ]


def test_times_round_trip_and_got10k_columns(tmp_path):
  io.write_times(tmp_path / 't.txt', [0.01, 0.02])
  np.testing.assert_allclose(io.read_times(tmp_path / 't.txt'), [0.01, 0.02])
  (tmp_path / 'g.txt').write_text('0.1,0.2\n0.3,0.4\n')
  np.testing.assert_allclose(
      io.read_times(tmp_path / 'g.txt'), [0.1, 0.2, 0.3, 0.4]
  )


def test_layouts_and_loading(tmp_path):
  seqs = [
      SimpleNamespace(name=n, boxes=np.zeros((3, 4)))
      for n in ('a', 'b', 'c', 'd')
  ]
  trk = tmp_path / 'results' / 'COST'
  io.write_sequence_results(
      tmp_path / 'results', 'COST', 'a', np.ones((3, 4)), times=[0.1] * 3
  )
  io.write_boxes(trk / 'b_001.txt', np.ones((3, 4)) * 2)  # got10k flat
  io.write_boxes(
      trk / 'c' / 'c_001.txt', np.ones((3, 4)) * 3
  )  # got10k per folder
  io.write_times(trk / 'times' / 'c_time.txt', [0.2] * 3)  # got10k OTB / MMOT
  with pytest.raises(FileNotFoundError, match="'d'"):
    io.load_tracker_results(trk, seqs)
  boxes, times = io.load_tracker_results(trk, seqs, skip_missing=True)
  assert sorted(boxes) == ['a', 'b', 'c'] and sorted(times) == ['a', 'c']
  assert boxes['b'][0, 0] == 2 and boxes['c'][0, 0] == 3
  long = [SimpleNamespace(name='a', boxes=np.zeros((4, 4)))]
  with pytest.raises(io.ResultsLengthError, match='a.txt'):
    io.load_tracker_results(trk, long)
  assert io.load_tracker_results(trk, long, strict_length=False)[0][
      'a'
  ].shape == (3, 4)
