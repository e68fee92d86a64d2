"""Dataset readers: tiny fake datasets in every layout, read back exactly.

No TensorFlow / JAX: these readers run on evaluation machines without them.
"""

import json
import os
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest

from input_pipeline.readers import DATASETS, load_dataset, read_box_file
from input_pipeline.readers.textfiles import read_flags
from input_pipeline.sequence import (
    DatasetRootError,
    ReadError,
    box_validity,
    build_sequence,
    check_box,
)

_JPEG = cv2.imencode('.jpg', np.full((32, 32, 3), 128, np.uint8))[1].tobytes()
_PNG = cv2.imencode('.png', np.full((32, 32, 3), 128, np.uint8))[1].tobytes()
NAN = np.nan


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def _frames(folder, names):
  os.makedirs(folder, exist_ok=True)
  for name in names:
    with open(os.path.join(folder, name), 'wb') as f:
      f.write(_PNG if name.endswith('.png') else _JPEG)


def _boxes_text(rows, sep=','):
  return ''.join(sep.join(str(v) for v in r) + '\n' for r in rows)


def _assert_boxes(actual, expected):
  np.testing.assert_array_equal(
      np.isnan(actual), np.isnan(np.asarray(expected, float))
  )
  np.testing.assert_allclose(
      np.nan_to_num(actual), np.nan_to_num(np.asarray(expected, float))
  )


ROWS = [[1, 2, 10, 12], [2, 3, 10, 12], [3, 4, 11, 12], [4, 5, 11, 13]]


# ---------------------------------------------------------------- low-level files


def test_read_box_file_tolerates_separators_nan_and_trailing_blanks(tmp_path):
  path = tmp_path / 'gt.txt'
  path.write_text(
      '1,2,3,4\n5\t6\t7\t8\n9 10  11 12\n13, 14, 15, 16\nNaN,nan,NaN,NaN\n\n  \n'
  )
  boxes = read_box_file(str(path))
  _assert_boxes(
      boxes,
      [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
          [9, 10, 11, 12],
          [13, 14, 15, 16],
          [NAN] * 4,
      ],
  )
  assert boxes.dtype == np.float64


@pytest.mark.parametrize(
    'text,line',
    [
        ('1,2,3,4\n1,2,x,4\n', 2),
        ('1,2,3\n', 1),
        ('1,2,3,4\n\n5,6,7,8\n', 2),
        ('1,2,3,4\n1,2,3,4,5\n', 2),
    ],
)
def test_read_box_file_names_file_and_line(tmp_path, text, line):
  path = tmp_path / 'groundtruth.txt'
  path.write_text(text)
  with pytest.raises(ReadError) as err:
    read_box_file(str(path))
  assert str(path) in str(err.value) and f'line {line}' in str(err.value)
  assert 'Fix:' in str(err.value) and err.value.line == line


def test_read_flags_one_line_or_one_per_line(tmp_path):
  (tmp_path / 'a.txt').write_text('0,1,0,1\n')
  (tmp_path / 'b.txt').write_text('0\n1\n0\n1\n\n')
  assert read_flags(str(tmp_path / 'a.txt')).tolist() == [0, 1, 0, 1]
  assert read_flags(str(tmp_path / 'b.txt')).tolist() == [0, 1, 0, 1]


def test_check_box_and_invalid_boxes_never_crash():
  assert check_box([1, 2, 3, 4]) is None
  assert (
      check_box([-5, -5, 3, 4]) is None
  )  # partly outside the image: still valid
  assert 'NaN' in check_box([NAN, 1, 2, 3])
  assert 'width or height' in check_box([1, 1, 0, 5])
  assert 'width or height' in check_box([1, 1, -2, 5])
  valid, counts = box_validity(
      [[1, 1, 2, 2], [1, 1, 0, 0], [NAN, 1, 1, 1], [1, 1, -1, 2]]
  )
  assert valid.tolist() == [True, False, False, False]
  assert counts == {'nan': 1, 'non_positive_size': 2}
  seq = build_sequence(
      's',
      'd',
      ['a', 'b', 'c', 'd'],
      [[1, 1, 2, 2], [1, 1, 0, 3], [NAN, 1, 1, 1], [0, 0, 0, 0]],
      zero_box_is_absent=True,
  )
  assert seq.visible.tolist() == [True, False, False, False]
  assert seq.extra['invalid_boxes'] == {'nan': 1, 'non_positive_size': 1}
  assert np.isnan(seq.boxes[3]).all() and seq.extra['raw_boxes'][
      3
  ].tolist() == [0, 0, 0, 0]


# ---------------------------------------------------------------- LaSOT / LaSOT_ext


def _lasot_seq(
    root,
    name,
    rows,
    occ,
    oov,
    nlp='white airplane landing on ground',
    gt_sep=',',
):
  folder = os.path.join(root, name.rsplit('-', 1)[0], name)
  _frames(
      os.path.join(folder, 'img'),
      [f'{i:08d}.jpg' for i in range(1, len(rows) + 1)],
  )
  _write(os.path.join(folder, 'groundtruth.txt'), _boxes_text(rows, gt_sep))
  _write(
      os.path.join(folder, 'full_occlusion.txt'), ','.join(map(str, occ)) + '\n'
  )
  _write(os.path.join(folder, 'out_of_view.txt'), ','.join(map(str, oov)))
  if nlp is not None:
    _write(os.path.join(folder, 'nlp.txt'), nlp + '\n')
  return folder


def test_lasot_splits_absence_and_language(tmp_path):
  root = str(tmp_path)
  _lasot_seq(
      root, 'airplane-1', ROWS, [0, 0, 1, 0], [0, 0, 0, 1]
  )  # bundled test list
  _lasot_seq(root, 'airplane-2', ROWS[:3], [0, 0, 0], [0, 0, 0], nlp=None)
  (test,) = load_dataset('lasot', root, 'test')
  assert (
      test.name == 'airplane-1'
      and test.dataset == 'lasot'
      and test.object_class == 'airplane'
  )
  assert test.language == 'white airplane landing on ground'
  assert test.frames[0] == os.path.join(
      root, 'airplane', 'airplane-1', 'img', '00000001.jpg'
  )
  assert test.visible.tolist() == [True, True, False, False]
  _assert_boxes(test.boxes, ROWS[:2] + [[NAN] * 4] * 2)
  np.testing.assert_array_equal(test.extra['raw_boxes'], ROWS)
  with pytest.warns(UserWarning, match='no language file'):
    (train,) = load_dataset('lasot', root, 'train')
  assert train.name == 'airplane-2' and train.language == '' and len(train) == 3
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    assert len(load_dataset('lasot', root, 'all')) == 2


def test_lasot_root_split_files_win_and_lasot_ext_is_all(tmp_path):
  root = str(tmp_path)
  _lasot_seq(root, 'atv-1', ROWS, [0] * 4, [0] * 4, gt_sep='\t')
  _lasot_seq(root, 'atv-2', ROWS, [0] * 4, [0] * 4)
  _write(os.path.join(root, 'testing_set.txt'), 'atv-2\n')
  assert [s.name for s in load_dataset('lasot', root, 'test')] == ['atv-2']
  assert [s.name for s in load_dataset('lasot', root, 'train')] == ['atv-1']
  assert [s.name for s in load_dataset('lasot_ext', root, 'test')] == [
      'atv-1',
      'atv-2',
  ]


def test_corrupt_line_through_a_loader_names_file_and_line(tmp_path):
  folder = _lasot_seq(str(tmp_path), 'cat-1', ROWS, [0] * 4, [0] * 4)
  _write(
      os.path.join(folder, 'groundtruth.txt'),
      '1,2,3,4\n1,2,3,4\n1,2,three,4\n1,2,3,4\n',
  )
  _write(os.path.join(str(tmp_path), 'testing_set.txt'), 'cat-1\n')
  with pytest.raises(ReadError, match=r'groundtruth.txt, line 3'):
    load_dataset('lasot', str(tmp_path), 'test')


# ---------------------------------------------------------------- GOT-10k


def _got_seq(split_dir, name, rows, n_frames, absence=None, cover=None):
  folder = os.path.join(split_dir, name)
  _frames(folder, [f'{i:08d}.jpg' for i in range(1, n_frames + 1)])
  _write(os.path.join(folder, 'groundtruth.txt'), _boxes_text(rows))
  if absence is not None:
    _write(
        os.path.join(folder, 'absence.label'),
        ''.join(f'{a}\n' for a in absence),
    )
    _write(
        os.path.join(folder, 'cover.label'), ''.join(f'{c}\n' for c in cover)
    )
  _write(
      os.path.join(folder, 'meta_info.ini'),
      '[METAINFO]\nurl: http://example.com/x\nbegin: 0\nend: 4\nanno_fps: 10Hz\n'
      'object_class: ctenophore\nmotion_class: swimming\nmajor_class: invertebrate\n'
      'root_class: animal\nmotion_adverb: slowly\nresolution: (32, 32)\n',
  )


def test_got10k_visibility_pseudo_language_and_first_box_only_test(tmp_path):
  root = str(tmp_path)
  _got_seq(
      os.path.join(root, 'train'),
      'GOT-10k_Train_000001',
      ROWS,
      4,
      [0, 0, 1, 0],
      [8, 0, 0, 5],
  )
  _write(os.path.join(root, 'train', 'list.txt'), 'GOT-10k_Train_000001\n')
  _got_seq(os.path.join(root, 'test'), 'GOT-10k_Test_000001', ROWS[:1], 4)
  _write(os.path.join(root, 'test', 'list.txt'), 'GOT-10k_Test_000001\n')
  (seq,) = load_dataset('got10k', root, 'train')
  assert (
      seq.language == 'invertebrate swimming'
      and seq.object_class == 'ctenophore'
  )
  assert seq.visible.tolist() == [True, False, False, True]
  assert seq.extra['meta']['root_class'] == 'animal' and seq.extra[
      'cover'
  ].tolist() == [8, 0, 0, 5]
  _assert_boxes(seq.boxes, [ROWS[0], [NAN] * 4, [NAN] * 4, ROWS[3]])
  (test,) = load_dataset('got10k', root, 'test')
  assert len(test.frames) == 4 and test.extra['first_box_only']
  assert test.visible.tolist() == [True, False, False, False]
  assert test.extra['invalid_boxes'] == {}
  _assert_boxes(test.boxes, [ROWS[0]] + [[NAN] * 4] * 3)


# ---------------------------------------------------------------- TrackingNet


def test_trackingnet_chunks_classmap_and_numeric_frame_order(tmp_path):
  root = str(tmp_path)
  _frames(
      os.path.join(root, 'TRAIN_0', 'frames', 'vid1'),
      ['0.jpg', '1.jpg', '2.jpg'],
  )
  _write(
      os.path.join(root, 'TRAIN_0', 'anno', 'vid1.txt'), _boxes_text(ROWS[:3])
  )
  _frames(
      os.path.join(root, 'TEST', 'frames', 'vidT'),
      [f'{i}.jpg' for i in range(11)],
  )
  _write(os.path.join(root, 'TEST', 'anno', 'vidT.txt'), _boxes_text(ROWS[:1]))
  _write(
      os.path.join(root, 'trackingnet_classmap.txt'),
      'vid1\tperson\nvidT\tcar\n',
  )
  (seq,) = load_dataset('trackingnet', root, 'train')
  assert seq.language == 'person' and seq.extra['chunk'] == 'TRAIN_0'
  _assert_boxes(seq.boxes, ROWS[:3])
  assert seq.frames[2].endswith(os.path.join('vid1', '2.jpg'))
  (test,) = load_dataset('trackingnet', root, 'test')
  assert [os.path.basename(f) for f in test.frames] == [
      f'{i}.jpg' for i in range(11)
  ]
  assert test.visible.sum() == 1 and test.language == 'car'


# ---------------------------------------------------------------- COCO


def test_coco_instances_as_lazy_one_frame_sequences(tmp_path):
  root = str(tmp_path)
  data = {
      'info': {'year': 2017},
      'licenses': [{'url': 'u', 'id': 1, 'name': 'cc'}],
      'images': [
          {'id': 7, 'file_name': '000000000007.jpg', 'width': 32, 'height': 24},
          {'id': 9, 'file_name': '000000000009.jpg', 'width': 32, 'height': 32},
      ],
      'annotations': [
          {
              'id': 1,
              'image_id': 7,
              'category_id': 18,
              'bbox': [1.5, 2, 10, 8],
              'iscrowd': 0,
              'area': 80,
              'segmentation': [[1, 2, 3, 4, 5, 6]],
          },
          {
              'id': 2,
              'image_id': 9,
              'category_id': 1,
              'bbox': [0, 0, 30, 30],
              'iscrowd': 1,
              'area': 900,
              'segmentation': {'counts': [1, 2], 'size': [32, 32]},
          },
          {
              'id': 3,
              'image_id': 9,
              'category_id': 1,
              'bbox': [4, 4, 0, 6],
              'iscrowd': 0,
              'area': 0,
              'segmentation': [[1, 2, 3, 4, 5, 6]],
          },
      ],
      'categories': [
          {'supercategory': 'animal', 'id': 18, 'name': 'dog'},
          {'supercategory': 'person', 'id': 1, 'name': 'person'},
      ],
  }
  _write(
      os.path.join(root, 'annotations', 'instances_train2017.json'),
      json.dumps(data),
  )
  _frames(
      os.path.join(root, 'train2017'), ['000000000007.jpg', '000000000009.jpg']
  )
  seqs = load_dataset('coco', root, 'train')
  assert len(seqs) == 2  # the crowd annotation is dropped
  dog, person = seqs[0], seqs[-1]
  assert dog.language == 'dog' and dog.object_class == 'dog' and len(dog) == 1
  assert dog.frames == [os.path.join(root, 'train2017', '000000000007.jpg')]
  _assert_boxes(dog.boxes, [[1.5, 2, 10, 8]])
  assert dog.visible.tolist() == [True] and dog.image_size == (32, 24)
  assert person.visible.tolist() == [False]  # zero width: invalid, counted
  assert person.extra['invalid_boxes'] == {'non_positive_size': 1}
  assert [s.name for s in seqs[0:2]] == [dog.name, person.name]
  with pytest.raises(ValueError, match='split'):
    load_dataset('coco', root, 'test')


# ---------------------------------------------------------------- TNL2K


def test_tnl2k_mixed_extensions_zero_box_absence_and_attributes(tmp_path):
  base = os.path.join(str(tmp_path), 'TNL2K_test_subset')
  video = os.path.join(base, 'advSamp_girl')
  _frames(
      os.path.join(video, 'imgs'),
      ['00001.jpg', '00002.png', '00003.jpg', '00010.jpg'],
  )
  _write(
      os.path.join(video, 'groundtruth.txt'),
      _boxes_text([ROWS[0], [0, 0, 0, 0], ROWS[2], ROWS[3]]),
  )
  _write(
      os.path.join(video, 'language.txt'),
      'the left girl in red, with long hair.\n',
  )
  _write(
      os.path.join(video, 'attributes.txt'),
      ''.join(f'{v} \n' for v in [1, 0] * 8 + [1]),
  )
  other = os.path.join(base, 'Car_video_1')
  _frames(os.path.join(other, 'imgs'), ['00001.jpg'])
  _write(os.path.join(other, 'groundtruth.txt'), _boxes_text(ROWS[:1]))
  with pytest.warns(UserWarning, match='1 sequence'):
    car, girl = load_dataset('tnl2k', str(tmp_path), 'test')
  assert (
      car.language == ''
      and girl.language == 'the left girl in red, with long hair.'
  )
  assert [os.path.basename(f) for f in girl.frames] == [
      '00001.jpg',
      '00002.png',
      '00003.jpg',
      '00010.jpg',
  ]
  assert girl.visible.tolist() == [True, False, True, True]
  assert girl.extra['absent_labels'] and np.isnan(girl.boxes[1]).all()
  assert (
      girl.attributes['CM']
      and not girl.attributes['ROT']
      and girl.attributes['MS']
  )


# ---------------------------------------------------------------- OTB99-Lang


def test_otb99_lang_query_splits_and_mixed_delimiters(tmp_path):
  root = str(tmp_path)
  for name, sep, split in (
      ('Basketball', '\t', 'test'),
      ('Biker', ' ', 'train'),
  ):
    folder = os.path.join(root, 'OTB_videos', name)
    _frames(os.path.join(folder, 'img'), [f'{i:04d}.jpg' for i in range(1, 4)])
    _write(
        os.path.join(folder, 'groundtruth_rect.txt'), _boxes_text(ROWS[:3], sep)
    )
    _write(
        os.path.join(root, f'OTB_query_{split}', f'{name}.txt'),
        f'the {name} player\n',
    )
  (seq,) = load_dataset('otb99_lang', root, 'test')
  assert seq.name == 'Basketball' and seq.language == 'the Basketball player'
  _assert_boxes(seq.boxes, ROWS[:3])
  assert [s.name for s in load_dataset('otb99_lang', root, 'all')] == [
      'Biker',
      'Basketball',
  ]


# ---------------------------------------------------------------- WebUAV-3M / VL-SOT500


def _mmot_video(
    folder,
    rows,
    absent,
    attributes,
    language='a small white drone',
    img='img',
    extra_files=None,
):
  _frames(
      os.path.join(folder, img),
      [f'{i:06d}.jpg' for i in range(1, len(rows) + 1)],
  )
  _frames(folder, ['000001.jpg'])  # the root-level preview, to be ignored
  _write(os.path.join(folder, 'groundtruth_rect.txt'), _boxes_text(rows))
  _write(os.path.join(folder, 'absent.txt'), ''.join(f'{a}\n' for a in absent))
  _write(
      os.path.join(folder, 'attributes.txt'),
      ','.join(map(str, attributes)) + '\n',
  )
  if language is not None:
    _write(os.path.join(folder, 'language.txt'), language + '\n')
  for name, text in (extra_files or {}).items():
    _write(os.path.join(folder, name), text)


def test_webuav3m_absence_attributes_and_scenario(tmp_path):
  root = str(tmp_path)
  rows = [ROWS[0], ROWS[1], [0, 0, 0, 0], ROWS[3]]
  attrs = [1] + [0] * 13 + [2, 0, 1]
  _mmot_video(
      os.path.join(root, 'Test', 'uav_1'),
      rows,
      [0, 0, 1, 0],
      attrs,
      extra_files={'scenario.txt': '0,0,1,0,0,0,0\n' * 4},
  )
  _mmot_video(os.path.join(root, 'Train', 'uav_2'), rows, [1, 1, 0, 1], attrs)
  (seq,) = load_dataset('webuav3m', root, 'test')
  assert (
      seq.visible.tolist() == [True, True, False, True]
      and seq.language == 'a small white drone'
  )
  assert len(seq.frames) == 4 and seq.frames[0].endswith(
      os.path.join('img', '000001.jpg')
  )
  assert seq.attributes['LR'] and not seq.attributes['MB']
  assert (
      seq.attributes['COMPLEXITY_hard']
      and seq.attributes['SIZE_small']
      and seq.attributes['LEN_medium']
  )
  assert seq.extra['scenario_path'].endswith('scenario.txt')
  (train,) = load_dataset(
      'webuav3m', root, 'train'
  )  # existence-style absent.txt
  assert train.visible.tolist() == [True, True, False, True]
  assert train.extra['absent_file'].startswith('existence')


def test_vlsot500_subsets_imgs_variant_and_relative_speed(tmp_path):
  root = str(tmp_path)
  attrs = [1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 2, 1, 0, 0, 0]
  _mmot_video(
      os.path.join(root, 'VL-SOT230', 'bird_1'), ROWS, [0, 0, 0, 1], attrs
  )
  _mmot_video(
      os.path.join(root, 'VL-SOT270', 'ball_3'),
      ROWS[:3],
      [0, 0, 0],
      attrs,
      img='imgs',
      language=None,
      extra_files={'relative_speed.txt': '3.25\n'},
  )
  with pytest.warns(UserWarning, match='no language file'):
    seqs = load_dataset('vlsot500', root)
  assert [(s.name, s.extra['subset']) for s in seqs] == [
      ('bird_1', 'VL-SOT230'),
      ('ball_3', 'VL-SOT270'),
  ]
  bird, ball = seqs
  assert bird.visible.tolist() == [True, True, True, False]
  assert (
      bird.attributes['CM']
      and bird.attributes['SD']
      and bird.attributes['BRI_high']
  )
  assert (
      not bird.attributes['BRI_low']
      and bird.attributes['LEN_short']
      and bird.attributes['NAO']
  )
  assert bird.extra['attribute_values'] == attrs
  assert ball.extra['relative_speed'] == 3.25 and ball.language == ''
  assert ball.frames[0].endswith(os.path.join('imgs', '000001.jpg'))
  assert [s.name for s in load_dataset('vlsot230', root)] == ['bird_1']
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    assert [s.name for s in load_dataset('vlsot270', root)] == ['ball_3']
    # A root that is a subset folder itself.
    assert [
        s.name
        for s in load_dataset('vlsot270', os.path.join(root, 'VL-SOT270'))
    ] == ['ball_3']


# ---------------------------------------------------------------- errors and registry


@pytest.mark.parametrize('name', sorted(DATASETS))
def test_missing_root_names_root_and_config_flag(tmp_path, name):
  missing = str(tmp_path / 'not_there')
  with pytest.raises(FileNotFoundError) as err:
    load_dataset(name, missing, next(iter(DATASETS[name].splits)))
  assert isinstance(err.value, DatasetRootError) and isinstance(
      err.value, ReadError
  )
  assert missing in str(err.value) and f'--config.data.roots.{name}' in str(
      err.value
  )


def test_unknown_dataset_and_split():
  with pytest.raises(ValueError, match='unknown dataset'):
    load_dataset('imagenet', '/tmp')
  assert {
      'lasot',
      'lasot_ext',
      'got10k',
      'trackingnet',
      'coco',
      'tnl2k',
      'otb99_lang',
      'webuav3m',
      'vlsot500',
      'vlsot230',
      'vlsot270',
  } <= set(DATASETS)


def test_readers_import_no_tensorflow_jax_or_torch():
  code = (
      'import sys, input_pipeline.readers, input_pipeline.stats, input_pipeline.synthetic; '
      'bad = [m for m in ("tensorflow", "jax", "torch") if m in sys.modules]; '
      'assert not bad, bad'
  )
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  subprocess.run([sys.executable, '-c', code], check=True, cwd=root)
