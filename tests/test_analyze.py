"""analyze(): two fake trackers -> metrics.json, comparison table and readable PNGs; the CLI."""

import json
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

from cost_jax import analyze as A
from cost_jax.evaluation import results_io

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
        boxes = np.stack([50 + 3 * t + rng.normal(0, 1, n_frames), 40 + t,
                          np.full(n_frames, 12.0 + s), np.full(n_frames, 9.0 + s)], 1)
        visible = np.ones(n_frames, bool)
        extra = {}
        if s % 2:
            visible[30:34] = False
            extra['raw_boxes'] = boxes.copy()
            extra['raw_boxes'][30:34] = 0.0
            boxes[30:34] = np.nan
        attrs = {'fast_motion': s < 3, 'occlusion': bool(s % 2), 'low_light': s == 5}
        seqs.append(FakeSeq(f'seq{s}', boxes, visible, attrs,
                            [f'img/{i + 1:06d}.jpg' for i in range(n_frames)], extra))
    return seqs


def fake_tracker(seqs, noise, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for seq in seqs:
        gt = np.nan_to_num(seq.extra.get('raw_boxes', seq.boxes))
        pred = gt + np.concatenate([rng.normal(0, noise, (len(gt), 2)), np.zeros((len(gt), 2))], 1)
        pred[~seq.visible] = gt[np.argmax(~seq.visible) - 1]  # keeps the last box while absent
        out[seq.name] = pred
    return out


def test_analyze_two_trackers(tmp_path, capsys):
    seqs = fake_dataset()
    results = {'COST': fake_tracker(seqs, 2.0, 1), 'TransT': fake_tracker(seqs, 6.0, 2)}
    times = {'COST': {s.name: np.full(len(s.boxes), 0.02) for s in seqs}}
    metrics = A.analyze(seqs, results, 'vlsot500', tmp_path / 'out', times_by_tracker=times,
                        title='fake VL-SOT')
    print(metrics['table'])
    on_disk = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert on_disk['protocol'] == 'vlsot500'
    assert on_disk['trackers']['COST']['protocol'] == 'vlsot500'
    assert set(on_disk['trackers']) == {'COST', 'TransT'}
    cost, transt = (on_disk['trackers'][k]['overall'] for k in ('COST', 'TransT'))
    assert cost['auc'] > transt['auc'] and cost['precision'] >= transt['precision']
    assert cost['fps'] == pytest.approx(50.0) and transt['fps'] is None
    assert set(on_disk['trackers']['COST']['per_attribute']) == {'fast_motion', 'occlusion',
                                                                 'low_light'}
    for kind in ('success', 'precision', 'norm_precision', 'complete_success', 'attributes_auc'):
        png = tmp_path / 'out' / f'{kind}.png'
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    lines = metrics['table'].splitlines()
    assert 'protocol: vlsot500' in lines[0]
    assert lines[1].split()[:7] == ['Tracker', 'AUC', 'P', 'P_norm', 'cAUC', 'mACC', 'FPS']
    assert lines[3].startswith('COST') and lines[4].startswith('TransT')  # best AUC first


def test_cli_end_to_end(tmp_path, monkeypatch, capsys):
    seqs = fake_dataset(n_seq=4)
    calls = []

    def load_dataset(name, root, split='test'):
        calls.append((name, root, split))
        return seqs

    readers = types.ModuleType('input_pipeline.readers')
    readers.load_dataset = load_dataset
    package = types.ModuleType('input_pipeline')
    package.readers = readers
    monkeypatch.setitem(sys.modules, 'input_pipeline', package)
    monkeypatch.setitem(sys.modules, 'input_pipeline.readers', readers)
    dirs = []
    for name, noise in (('COST', 1.0), ('TransT', 8.0)):
        for seq_name, boxes in fake_tracker(seqs, noise, 3).items():
            results_io.write_sequence_results(tmp_path / 'res', name, seq_name, boxes,
                                              times=np.full(len(boxes), 0.04))
        dirs.append(str(tmp_path / 'res' / name))
    out = tmp_path / 'report'
    rc = A.main(['--dataset', 'vlsot500', '--root', '/data/x', '--split', 'test',
                 '--results', *dirs, '--out', str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and calls == [('vlsot500', '/data/x', 'test')]
    assert 'protocol: vlsot500' in printed and 'COST' in printed and '25.0' in printed  # FPS
    assert json.loads((out / 'metrics.json').read_text())['protocol'] == 'vlsot500'
    # a results file with a wrong line count -> clear error naming the file, exit code 1
    results_io.write_boxes(tmp_path / 'res' / 'TransT' / 'seq1.txt', np.ones((5, 4)))
    rc = A.main(['--dataset', 'vlsot500', '--root', '/data/x', '--results', *dirs,
                 '--protocol', 'lasot', '--out', str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and 'seq1.txt' in err and 'expected 40 lines' in err and 'found 5' in err
