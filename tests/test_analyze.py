"""analyze(): two fake trackers -> metrics.json, comparison table and readable PNGs; the CLI."""

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from cost_jax import analyze as A
from cost_jax.evaluation import results_io
from cost_jax.evaluation.scoring import score_frames

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@dataclass
class FakeSeq:
  name: str
  boxes: np.ndarray
  visible: np.ndarray
  attributes: dict
  frames: list = field(default_factory=list)
  extra: dict = field(default_factory=dict)


def fake_dataset(n_seq=6, n_frames=40, seed=0):
  """Small boxes drifting right; frames 30..33 absent (NaN, raw 0,0,0,0) in odd sequences."""
  rng = np.random.default_rng(seed)
  seqs = []
  for s in range(n_seq):
    t = np.arange(n_frames)
    boxes = np.stack(
        [
            50 + 3 * t + rng.normal(0, 1, n_frames),
            40 + t,
            np.full(n_frames, 12.0 + s),
            np.full(n_frames, 9.0 + s),
        ],
        1,
    )
    visible = np.ones(n_frames, bool)
    extra = {}
    if s % 2:
      visible[30:34] = False
      extra['raw_boxes'] = boxes.copy()
      extra['raw_boxes'][30:34] = 0.0
      boxes[30:34] = np.nan
    attrs = {
        'fast_motion': s < 3,
        'occlusion': bool(s % 2),
        'low_light': s == 5,
    }
    seqs.append(
        FakeSeq(
            f'seq{s}',
            boxes,
            visible,
            attrs,
            [f'img/{i + 1:06d}.jpg' for i in range(n_frames)],
            extra,
        )
    )
  return seqs


def fake_tracker(seqs, noise, seed):
  rng = np.random.default_rng(seed)
  out = {}
  for seq in seqs:
    gt = np.nan_to_num(seq.extra.get('raw_boxes', seq.boxes))
    pred = gt + np.concatenate(
        [rng.normal(0, noise, (len(gt), 2)), np.zeros((len(gt), 2))], 1
    )
    pred[~seq.visible] = gt[
        np.argmax(~seq.visible) - 1
    ]  # keeps the last box while absent
    out[seq.name] = pred
  return out


def test_analyze_two_trackers(tmp_path, capsys):
  seqs = fake_dataset()
  results = {
      'COST': fake_tracker(seqs, 2.0, 1),
      'TransT': fake_tracker(seqs, 6.0, 2),
  }
  times = {'COST': {s.name: np.full(len(s.boxes), 0.02) for s in seqs}}
  metrics = A.analyze(
      seqs,
      results,
      'vlsot500',
      tmp_path / 'out',
      times_by_tracker=times,
      title='fake VL-SOT',
  )
  print(metrics['table'])
  on_disk = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
  assert on_disk['protocol'] == 'vlsot500'
  assert on_disk['trackers']['COST']['protocol'] == 'vlsot500'
  assert set(on_disk['trackers']) == {'COST', 'TransT'}
  cost, transt = (on_disk['trackers'][k]['overall'] for k in ('COST', 'TransT'))
  assert (
      cost['auc'] > transt['auc'] and cost['precision'] >= transt['precision']
  )
  assert cost['fps'] == pytest.approx(50.0) and transt['fps'] is None
  assert set(on_disk['trackers']['COST']['per_attribute']) == {
      'fast_motion',
      'occlusion',
      'low_light',
  }
  for kind in (
      'success',
      'precision',
      'norm_precision',
      'complete_success',
      'attributes_auc',
  ):
    png = tmp_path / 'out' / f'{kind}.png'
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
  lines = metrics['table'].splitlines()
  assert 'protocol: vlsot500' in lines[0]
  assert lines[1].split()[:7] == [
      'Tracker',
      'AUC',
      'P',
      'P_norm',
      'cAUC',
      'mACC',
      'FPS',
  ]
  assert lines[3].startswith('COST') and lines[4].startswith(
      'TransT'
  )  # best AUC first


def test_cli_end_to_end(tmp_path, monkeypatch, capsys):
  seqs = fake_dataset(n_seq=4)
  calls = []

  def load_dataset(name, root, split='test'):
    calls.append((name, root, split))
    return seqs

  monkeypatch.setattr(A, 'load_dataset', load_dataset)
  dirs = []
  for name, noise in (('COST', 1.0), ('TransT', 8.0)):
    for seq_name, boxes in fake_tracker(seqs, noise, 3).items():
      results_io.write_sequence_results(
          tmp_path / 'res',
          name,
          seq_name,
          boxes,
          times=np.full(len(boxes), 0.04),
      )
    dirs.append(str(tmp_path / 'res' / name))
  out = tmp_path / 'report'
  rc = A.main(
      [
          '--dataset',
          'vlsot500',
          '--root',
          '/data/x',
          '--split',
          'test',
          *[f'--results={d}' for d in dirs],
          '--out',
          str(out),
      ]
  )
  printed = capsys.readouterr().out
  assert rc == 0 and calls == [('vlsot500', '/data/x', 'test')]
  assert (
      'protocol: vlsot500' in printed
      and 'COST' in printed
      and '25.0' in printed
  )  # FPS
  assert (
      json.loads((out / 'metrics.json').read_text())['protocol'] == 'vlsot500'
  )
  # a results file with a wrong line count -> one line naming the file, exit status 2
  results_io.write_boxes(
      tmp_path / 'res' / 'TransT' / 'seq1.txt', np.ones((5, 4))
  )
  rc = A.main(
      [
          '--dataset',
          'vlsot500',
          '--root',
          '/data/x',
          *[f'--results={d}' for d in dirs],
          '--protocol',
          'lasot',
          '--out',
          str(out),
      ]
  )
  err = capsys.readouterr().err
  assert (
      rc == 2
      and 'seq1.txt' in err
      and 'expected 40 lines' in err
      and 'found 5' in err
  )
  assert err.startswith('error: ') and '. Fix: ' in err and err.count('\n') == 1


def got10k_style_toolkit_results(folder, seqs, runs):
  """got10k toolkit layout: <seq>/<seq>_00r.txt per run and one time column per run."""
  for seq in seqs:
    for r, pred in enumerate(runs[seq.name], start=1):
      results_io.write_boxes(
          folder / seq.name / f'{seq.name}_{r:03d}.txt', pred
      )
    results_io.atomic_write_text(
        folder / seq.name / f'{seq.name}_time.txt',
        '0.02,0.04,0.05\n' * len(seq.boxes),
    )


def test_got10k_repetitions_are_scored_together_as_the_toolkit_does(tmp_path):
  seqs = fake_dataset(n_seq=3, n_frames=20)
  runs = {
      s.name: [
          pred[s.name]
          for pred in (
              fake_tracker(seqs, n, i) for i, n in enumerate((1.0, 6.0, 12.0))
          )
      ]
      for s in seqs
  }
  folder = tmp_path / 'toolkit'
  got10k_style_toolkit_results(folder, seqs, runs)
  boxes, times = results_io.load_tracker_results(folder, seqs)
  assert all(len(boxes[s.name]) == 3 for s in seqs)
  metrics = A.analyze(
      seqs,
      {'toolkit': boxes},
      'got10k',
      tmp_path / 'out',
      times_by_tracker={'toolkit': times},
      plots=False,
  )
  overall = metrics['trackers']['toolkit']['overall']
  # ExperimentGOT10k: per sequence the IoUs of all runs are concatenated, then pooled.
  ious = np.concatenate(
      [
          score_frames(r, s.boxes, s.visible, 'got10k', name=s.name)['iou'][1:][
              s.visible[1:]
          ]
          for s in seqs
          for r in boxes[s.name]
      ]
  )
  assert overall['ao'] == pytest.approx(np.mean(ious))
  assert overall['success_rate_50'] == pytest.approx(np.mean(ious > 0.5))
  assert overall['fps'] == pytest.approx(
      np.mean(1 / np.array([0.02, 0.04, 0.05]))
  )
  first = A.analyze(
      seqs,
      {'toolkit': {k: v[0] for k, v in boxes.items()}},
      'got10k',
      tmp_path / 'first',
      plots=False,
  )
  assert first['trackers']['toolkit']['overall']['ao'] != pytest.approx(
      overall['ao']
  )


def test_got10k_table_shows_ao_and_success_rates(tmp_path):
  seqs = fake_dataset(n_seq=3, n_frames=20)
  metrics = A.analyze(
      seqs,
      {'good': fake_tracker(seqs, 1.0, 0), 'bad': fake_tracker(seqs, 10.0, 1)},
      'got10k',
      tmp_path,
      plots=False,
  )
  header, rule, best, worst = metrics['table'].splitlines()[1:5]
  assert header.split() == ['Tracker', 'AO', 'SR0.5', 'SR0.75']
  assert best.split()[0] == 'good' and worst.split()[0] == 'bad'
  overall = metrics['trackers']['good']['overall']
  assert best.split()[1:] == [
      f'{100 * overall[k]:.1f}'
      for k in ('ao', 'success_rate_50', 'success_rate_75')
  ]


def test_fps_column_says_what_it_measured(tmp_path):
  seqs = fake_dataset(n_seq=2, n_frames=10)
  for name, batch in (('batched', 16), ('stream', None)):
    write_dir = tmp_path / name
    for seq in seqs:
      results_io.write_sequence_results(
          tmp_path,
          name,
          seq.name,
          seq.boxes,
          times=np.full(len(seq.boxes), 0.01),
      )
    if batch:
      results_io.write_timing(write_dir, batch)
  assert (
      results_io.timing_label(results_io.read_timing(tmp_path / 'batched'))
      == 'batched x16'
  )
  metrics = A.analyze(
      seqs,
      {n: {s.name: s.boxes for s in seqs} for n in ('batched', 'stream')},
      'pytracking',
      tmp_path / 'out',
      plots=False,
      times_by_tracker={
          n: {s.name: np.full(10, 0.01) for s in seqs}
          for n in ('batched', 'stream')
      },
      timing_by_tracker={
          'batched': results_io.read_timing(tmp_path / 'batched'),
          'stream': results_io.read_timing(tmp_path / 'stream'),
      },
  )
  lines = metrics['table'].splitlines()
  assert lines[1].split()[-3:] == ['FPS', 'FPS', 'measured']
  rows = {line.split()[0]: line for line in lines[3:]}
  assert rows['batched'].split()[-3:] == ['100.0', 'batched', 'x16']
  assert rows['stream'].split()[-2:] == ['100.0', 'single-stream']


def test_flags_use_underscores_and_keep_the_earlier_hyphens():
  base = ['--dataset=lasot', '--root=R', '--results', 'A', '--out=O']
  flags = ['skip_missing', 'allow_length_mismatch', 'no_attributes']
  for spelling in (flags, [f.replace('_', '-') for f in flags]):
    args = A._parse(['analyze', *base, *[f'--{f}' for f in spelling]])
    assert (
        args.results == ['A']
        and args.skip_missing
        and args.allow_length_mismatch
    )
    assert args.no_attributes
