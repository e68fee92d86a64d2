"""Validation during training: scores by hand, and a Validator run."""

import json
import math
import os

import numpy as np
import pytest

from cost_jax import train_log
from cost_jax import validation
from input_pipeline import synthetic
from input_pipeline.readers import load_dataset


def test_sequence_scores_skip_the_first_and_absent_frames():
  truth = np.array(
      [[0, 0, 10, 10], [10, 0, 10, 10], [0, 0, 10, 10], [50, 50, 10, 10]], float
  )
  visible = np.array([True, True, False, True])
  # Frame 1: exact (IoU 1, error 0); frame 2 absent; frame 3: shifted by
  # 5 px (IoU 50/150 = 1/3, centre error 5 <= 20).
  boxes = truth.copy()
  boxes[0] = [99, 99, 1, 1]  # the initialisation frame is not scored
  boxes[2] = [200, 200, 5, 5]
  boxes[3] = [55, 50, 10, 10]
  auc, p20 = validation.sequence_scores(boxes, truth, visible)
  # Success AUC = mean over the 21 thresholds 0, 0.05, ..., 1 of the
  # fraction of frames with IoU > t: IoU 1 passes 20 of them, IoU 1/3
  # passes 7 (t = 0 ... 0.30).
  assert auc == pytest.approx((20 + 7) / 2 / 21)
  assert p20 == 1.0
  assert all(
      math.isnan(v)
      for v in validation.sequence_scores(
          boxes, truth, [True, False, False, False]
      )
  )


def test_mean_scores_in_percent_ignore_empty_sequences():
  out = validation.mean_scores(
      [(0.5, 1.0), (float('nan'), float('nan')), (0.3, 0.0)]
  )
  assert out == {'auc': pytest.approx(40.0), 'p20': pytest.approx(50.0)}


def test_validator_tracks_and_reports_baselines(smoke_model, tmp_path):
  config, _, _, variables = smoke_model
  synthetic.generate(
      str(tmp_path), num_videos=2, frames=5, size=(96, 72), seed=3
  )
  sequences = load_dataset('synthetic', str(tmp_path), 'all')
  scores = validation.Validator(config, sequences)(variables)
  for key in (
      'val_auc',
      'val_p20',
      'val_auc_static',
      'val_auc_ncc',
      'val_p20_ncc',
      'val_s',
  ):
    assert np.isfinite(scores[key]), key
  assert 0 <= scores['val_auc'] <= 100


def test_loss_curve_merges_validation_rows_of_the_same_step(tmp_path):
  """Validation rows share steps with the loss rows; both must be plotted
  (a later row of a step used to replace the earlier one)."""
  rows = [
      {'step': 25, 'loss': 8.0, 'ce': 0.69, 'ce_const': 0.69},
      {'step': 50, 'loss': 7.0, 'ce': 0.5, 'ce_const': 0.69},
      {'step': 50, 'val_auc': 10.0, 'val_auc_ncc': 30.0, 'val_auc_static': 3.0},
  ]
  jsonl = tmp_path / 'metrics.jsonl'
  jsonl.write_text(''.join(json.dumps(r) + '\n' for r in rows))
  merged = train_log.read_metric_rows(jsonl)
  assert merged[50] == {
      'step': 50,
      'loss': 7.0,
      'ce': 0.5,
      'ce_const': 0.69,
      'val_auc': 10.0,
      'val_auc_ncc': 30.0,
      'val_auc_static': 3.0,
  }
  png = train_log.save_loss_curve(jsonl, tmp_path / 'loss_curve.png')
  assert png.exists() and os.path.getsize(png) > 1000
