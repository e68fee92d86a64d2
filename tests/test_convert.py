"""Converters: layouts, round trips, and refusals that leave outputs alone.

`python -m cost_jax.convert` runs in-process through `__main__.main(argv)`.
"""

import collections
import contextlib
import json
import os
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip('torch')

import jax  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402

from configs import cost  # noqa: E402
from cost_jax import convert  # noqa: E402
from cost_jax import errors  # noqa: E402
from cost_jax.convert import __main__ as cli  # noqa: E402
from cost_jax.convert import commands, matching, names, store  # noqa: E402
import torch_reference  # noqa: E402
from torch_reference import resnet  # noqa: E402

SMOKE_TRANST = 'configs/cost.py:smoke,no_lb'


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def run_cli(*argv):
  return cli.main([str(a) for a in argv])


def zeros_like_model(config):
  return names.unflatten(
      {
          path: np.zeros(shape, np.float32)
          for path, shape in commands.target_shapes(config).items()
      }
  )


def random_like_model(config, seed=0):
  """Variables of the config's model with distinct random values."""
  rng = np.random.default_rng(seed)
  return names.unflatten(
      {
          path: rng.normal(size=shape).astype(np.float32)
          for path, shape in commands.target_shapes(config).items()
      }
  )


def as_torch_state(variables):
  """Our variables in torch names (the export map), for comparisons."""
  return matching.export(names.flatten(variables))


def snapshot(folder):
  return {
      n: open(os.path.join(folder, n), 'rb').read()
      for n in sorted(os.listdir(folder))
  }


def refused(tmp_path, capsys, command, source, output, *flags):
  """Runs a conversion onto an existing `output` that must fail as a user
  error (one line `error: <what>. Fix: <how>`, status 2) with every file of
  tmp_path unchanged. Returns its stderr."""
  (tmp_path / output).write_bytes(b'previous')
  before = snapshot(tmp_path)
  assert (
      run_cli(command, '--input', source, '--output', tmp_path / output, *flags)
      == errors.EXIT_STATUS
  )
  assert snapshot(tmp_path) == before
  err = capsys.readouterr().err
  assert err.startswith('error: ') and err.count('\n') == 1, err
  assert errors.FIX in err, err
  return err


@contextlib.contextmanager
def foreign_modules(**classes):
  """Makes `module.path:Name` objects picklable, then forgets the modules."""
  created = []
  for dotted, obj in classes.items():
    module_name, name = dotted.rsplit(':', 1)
    parts = module_name.split('.')
    for i in range(1, len(parts) + 1):
      sub = '.'.join(parts[:i])
      if sub not in sys.modules:
        sys.modules[sub] = types.ModuleType(sub)
        created.append(sub)
    obj.__module__, obj.__qualname__ = module_name, name
    setattr(sys.modules[module_name], name, obj)
  try:
    yield
  finally:
    for sub in created:
      del sys.modules[sub]


class NetConstructor:  # Stands for ltr.admin.model_constructor.NetConstructor.

  def __init__(self):
    self.fun_name, self.fun_module = 'transt_resnet50', 'ltr.models.tracking'
    self.kwds = {'settings': {'lr': 1e-4}}


@pytest.fixture(scope='module')
def transt_state():
  ref = torch_reference.build_model(cost.get_config('smoke,no_lb'))
  return torch_reference.randomize_(ref, seed=5).state_dict()


def save_official(state, path, legacy=False):
  """Like TransT's save_checkpoint: 'net' plus pickled foreign objects."""
  ckpt = {
      'epoch': 300,
      'net_type': 'TransT',
      'net': state,
      'constructor': NetConstructor(),
      'stats': {'train': {'loss': np.float64(0.5)}},
  }
  with foreign_modules(
      **{'ltr.admin.model_constructor:NetConstructor': NetConstructor}
  ):
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize('legacy', [False, True])
def test_official_transt_checkpoint_converts(tmp_path, transt_state, legacy):
  pth, out = tmp_path / 'transt.pth', tmp_path / 'out' / 'transt.safetensors'
  save_official(transt_state, pth, legacy)
  assert (
      run_cli(
          'transt', '--input', pth, '--output', out, '--config', SMOKE_TRANST
      )
      == 0
  )
  meta = json.load(open(str(out).replace('.safetensors', '.json')))
  assert meta['variant'] == 'smoke,no_lb' and meta['covers'] == ['']
  variables = convert.load_converted(
      str(out), zeros_like_model(cost.get_config('smoke,no_lb'))
  )
  back = as_torch_state(variables)
  assert set(back) == set(transt_state)
  for key, value in transt_state.items():
    if not key.endswith('num_batches_tracked'):
      np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)


def test_paper_no_lb_has_the_official_key_layout():
  """430 entries (301 parameters, 129 BatchNorm buffers), and our converter's map covers exactly them."""
  config = cost.get_config('paper,no_lb')
  with torch.device('meta'):  # Names and shapes only.
    state = torch_reference.build_model(config).state_dict()
  assert len(state) == 430
  assert (
      sum(
          v.numel()
          for k, v in state.items()
          if 'running' not in k and 'num_batches' not in k
      )
      == 23_016_006
  )
  heads = ('featurefusion_network.', 'class_embed.', 'bbox_embed.')
  assert sum(k.startswith(heads) for k in state) == 170
  for key, shape in {
      'featurefusion_network.encoder.layers.3.multihead_attn2.in_proj_weight': (
          768,
          256,
      ),
      'featurefusion_network.decoder.layers.0.linear1.weight': (2048, 256),
      'featurefusion_network.decoder.norm.weight': (256,),
      'class_embed.layers.2.weight': (2, 256),
      'input_proj.weight': (256, 1024, 1, 1),
      'backbone.0.body.layer3.0.downsample.0.weight': (1024, 512, 1, 1),
      'backbone.0.body.layer3.5.bn3.running_var': (1024,),
  }.items():
    assert tuple(state[key].shape) == shape, key
  table = names.table(commands.target_shapes(config))
  wanted = {
      k: tuple(v.shape)
      for k, v in state.items()
      if not k.endswith('num_batches_tracked')
  }
  assert {k: e.torch_shape for k, e in table.items()} == wanted


def test_transt_into_cost_visual_branch(tmp_path, transt_state):
  pth, out = tmp_path / 'transt.pth', tmp_path / 'cost_visual.safetensors'
  save_official(transt_state, pth)
  assert (
      run_cli(
          'transt',
          '--input',
          pth,
          '--output',
          out,
          '--target',
          'cost',
          '--config',
          'configs/cost.py:smoke',
      )
      == 0
  )
  meta = json.load(open(tmp_path / 'cost_visual.json'))
  assert tuple(meta['covers']) == convert.VISUAL_BRANCH
  assert 'class_embed.layers.1.weight' in meta['ignored']
  target = zeros_like_model(cost.get_config('smoke'))
  variables = convert.load_converted(str(out), target)
  back = as_torch_state(variables)
  np.testing.assert_array_equal(
      back['input_proj.weight'], transt_state['input_proj.weight'].numpy()
  )
  np.testing.assert_array_equal(
      back['featurefusion_network.decoder.norm.bias'],
      transt_state['featurefusion_network.decoder.norm.bias'].numpy(),
  )
  assert not np.any(back['class_embed.layers.0.weight'])  # target's own
  assert not np.any(back['vlt.0.linear1.weight'])


def test_resnet50_torchvision_layout(tmp_path):
  trunk = resnet.ResNet((1, 1, 1), 8)
  torch_reference.randomize_(trunk, seed=2)
  state = dict(trunk.state_dict())
  state['layer4.0.conv1.weight'] = torch.zeros(32, 32, 1, 1)  # ignored
  state['fc.weight'], state['fc.bias'] = torch.zeros(10, 64), torch.zeros(10)
  torch.save(state, tmp_path / 'resnet50.pth')
  out = tmp_path / 'backbone.safetensors'
  assert (
      run_cli(
          'resnet50',
          '--input',
          tmp_path / 'resnet50.pth',
          '--output',
          out,
          '--config',
          'configs/cost.py:smoke',
      )
      == 0
  )
  meta = json.load(open(tmp_path / 'backbone.json'))
  assert sorted(meta['ignored']) == sorted(
      f'backbone.0.body.{k}'
      for k in ('fc.bias', 'fc.weight', 'layer4.0.conv1.weight')
  )
  back = as_torch_state(
      convert.load_converted(
          str(out), zeros_like_model(cost.get_config('smoke'))
      )
  )
  for key, value in trunk.state_dict().items():
    if 'num_batches' not in key:
      np.testing.assert_array_equal(
          back[f'backbone.0.body.{key}'], value.numpy()
      )
  assert not np.any(back['input_proj.weight'])


@pytest.fixture(scope='module')
def tiny_bert_folder(tmp_path_factory):
  """An HF pre-training checkpoint: 'bert.' prefix, cls.* heads, .bin file."""
  transformers = pytest.importorskip('transformers')
  folder = tmp_path_factory.mktemp('tiny_bert')
  config = transformers.BertConfig(
      vocab_size=99,
      hidden_size=16,
      num_hidden_layers=2,
      num_attention_heads=4,
      intermediate_size=32,
  )
  model = transformers.BertForPreTraining(config)
  config.save_pretrained(folder)
  torch.save(model.state_dict(), folder / 'pytorch_model.bin')
  return folder, model


def test_bert_folder_any_config(tmp_path, tiny_bert_folder):
  folder, model = tiny_bert_folder
  out = tmp_path / 'bert.safetensors'
  assert (
      run_cli(
          'bert',
          '--input',
          folder,
          '--output',
          out,
          '--config',
          'configs/cost.py:smoke',
          f'--config.text.path={folder}',
          '--config.text.num_layers=1',
      )
      == 0
  )
  meta = json.load(open(tmp_path / 'bert.json'))
  assert any(k.startswith('text_encoder.cls.') for k in meta['ignored'])
  assert any('.layer.1.' in k for k in meta['ignored'])  # past num_layers=1
  config = cost.get_config('smoke')
  config.text.update(path=str(folder), num_layers=1)
  back = as_torch_state(
      convert.load_converted(str(out), zeros_like_model(config))
  )
  theirs = model.state_dict()
  for key in (
      'embeddings.word_embeddings.weight',
      'pooler.dense.weight',
      'encoder.layer.0.attention.self.query.weight',
  ):
    np.testing.assert_array_equal(
        back[f'text_encoder.{key}'], theirs[f'bert.{key}'].numpy()
    )


def test_bert_hidden_size_mismatch_is_refused(
    tmp_path, tiny_bert_folder, capsys
):
  folder, _ = tiny_bert_folder
  err = refused(
      tmp_path,
      capsys,
      'bert',
      folder,
      'bert.safetensors',
      '--config',
      'configs/cost.py:smoke',
  )
  assert str(folder) in err and 'hidden_size: folder 16, config 384' in err


def test_other_network_is_refused_by_name(tmp_path, capsys):
  other = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Conv2d(3, 8, 3))
  torch.save(other.state_dict(), tmp_path / 'other.pth')
  err = refused(
      tmp_path,
      capsys,
      'transt',
      tmp_path / 'other.pth',
      'transt.safetensors',
      '--config',
      SMOKE_TRANST,
  )
  assert 'other.pth' in err and 'nothing was written' in err
  assert 'missing tensors' in err and 'backbone.0.body.conv1.weight' in err
  assert 'unexpected tensors' in err and '1.weight [8, 3, 3, 3]' in err


def test_truncated_files_are_refused(tmp_path, transt_state, capsys):
  save_official(transt_state, tmp_path / 'full.pth')
  data = (tmp_path / 'full.pth').read_bytes()
  (tmp_path / 'cut.pth').write_bytes(data[: len(data) // 2])
  err = refused(
      tmp_path,
      capsys,
      'transt',
      tmp_path / 'cut.pth',
      'out.safetensors',
      '--config',
      SMOKE_TRANST,
  )
  assert 'cut.pth is a truncated' in err
  before = snapshot(tmp_path)
  store.write(
      str(tmp_path / 'conv.safetensors'),
      {'params/a': np.ones(1000, np.float32)},
      {},
  )
  data = (tmp_path / 'conv.safetensors').read_bytes()
  (tmp_path / 'conv.safetensors').write_bytes(data[:300])
  with pytest.raises(convert.WeightFileError, match='conv.safetensors'):
    convert.load_converted(str(tmp_path / 'conv.safetensors'), {})
  os.remove(tmp_path / 'conv.safetensors')
  os.remove(tmp_path / 'conv.json')
  assert snapshot(tmp_path) == before


CALLS = []


def record_call(*args):  # Becomes `evil.run`; must never run on load.
  CALLS.append(args)


class CallsOnLoad:

  def __reduce__(self):
    return (record_call, ('rm -rf ~',))


def test_pickle_that_calls_a_function_is_refused(
    tmp_path, transt_state, capsys
):
  with foreign_modules(**{'evil:run': record_call}):
    torch.save(
        {'net': transt_state, 'payload': CallsOnLoad()}, tmp_path / 'evil.pth'
    )
  err = refused(
      tmp_path,
      capsys,
      'transt',
      tmp_path / 'evil.pth',
      'out.safetensors',
      '--config',
      SMOKE_TRANST,
  )
  assert 'evil.pth was refused as unsafe' in err
  assert 'calls evil.run(...)' in err and not CALLS
  assert 'weights_only' not in err


class SystemOnLoad:
  """Runs a shell command when unpickled (os.system: posix.system)."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


@pytest.mark.parametrize('zipped', [True, False])
def test_pickle_that_calls_os_system_is_refused(
    tmp_path, transt_state, capsys, zipped
):
  """torch blocks os.system itself: the refusal names it, says the file
  was refused as unsafe and never advises weights_only=False."""
  marker = tmp_path / 'ran'
  torch.save(
      {'net': transt_state, 'payload': SystemOnLoad(marker)},
      tmp_path / 'evil.pth',
      _use_new_zipfile_serialization=zipped,
  )
  err = refused(
      tmp_path,
      capsys,
      'transt',
      tmp_path / 'evil.pth',
      'out.safetensors',
      '--config',
      SMOKE_TRANST,
  )
  assert 'evil.pth was refused as unsafe' in err
  assert f'{os.system.__module__}.system' in err  # posix.system on Linux.
  assert 'weights_only' not in err and not marker.exists()


def test_misshaped_missing_and_allow_missing(tmp_path, transt_state, capsys):
  state = collections.OrderedDict(transt_state)
  del state['class_embed.layers.0.bias']
  state['input_proj.bias'] = torch.zeros(7)
  torch.save({'net': state}, tmp_path / 'bad.pth')
  out = tmp_path / 'out.safetensors'
  assert (
      run_cli(
          'transt',
          '--input',
          tmp_path / 'bad.pth',
          '--output',
          out,
          '--config',
          SMOKE_TRANST,
      )
      == errors.EXIT_STATUS
  )
  err = capsys.readouterr().err
  assert 'class_embed.layers.0.bias [32]' in err
  assert 'input_proj.bias: file [7], model [32]' in err
  assert not out.exists()
  state['input_proj.bias'] = transt_state['input_proj.bias']
  torch.save({'net': state}, tmp_path / 'bad.pth')
  assert (
      run_cli(
          'transt',
          '--input',
          tmp_path / 'bad.pth',
          '--output',
          out,
          '--config',
          SMOKE_TRANST,
          r'--allow_missing=class_embed\.layers\.0',
      )
      == 0
  )
  meta = json.load(open(tmp_path / 'out.json'))
  assert meta['left_to_init'] == ['params/class_embed/layers_0/bias']
  target = zeros_like_model(cost.get_config('smoke,no_lb'))
  target['params']['class_embed']['layers_0']['bias'] += 3.0
  got = convert.load_converted(str(out), target)
  assert np.all(got['params']['class_embed']['layers_0']['bias'] == 3.0)
  assert (
      run_cli('export', '--input', out, '--output', tmp_path / 'x.safetensors')
      == errors.EXIT_STATUS
  )  # partial
  assert 'covers only part' in capsys.readouterr().err


def test_load_converted_names_file_and_keys(tmp_path, transt_state):
  save_official(transt_state, tmp_path / 'transt.pth')
  out = tmp_path / 'no_lb.safetensors'
  assert (
      run_cli(
          'transt',
          '--input',
          tmp_path / 'transt.pth',
          '--output',
          out,
          '--config',
          SMOKE_TRANST,
      )
      == 0
  )
  with pytest.raises(convert.ConversionError) as info:
    convert.load_converted(str(out), zeros_like_model(cost.get_config('smoke')))
  message = str(info.value)
  assert 'no_lb.safetensors' in message and "'smoke,no_lb'" in message
  assert 'params/convs_0/kernel' in message  # missing
  assert 'params/class_embed/layers_1/kernel: file [32, 2], model [32, 1]' in (
      message
  )
  # Only the visual branch of a no_lb file fits COST: `include` selects it.
  got = convert.load_converted(
      str(out),
      zeros_like_model(cost.get_config('smoke')),
      include=convert.VISUAL_BRANCH,
  )
  assert np.any(got['params']['input_proj']['kernel'])


def test_round_trip_export_reference_import(tmp_path, tiny_bert_folder):
  """JAX -> export -> reference (strict) -> .pth -> import -> identical."""
  folder, _ = tiny_bert_folder
  config = cost.get_config('smoke')
  config.text.path = str(folder)
  variables = random_like_model(config)
  ours = tmp_path / 'ours.safetensors'
  store.write(str(ours), names.flatten(variables), {'variant': 'smoke'})
  exported = tmp_path / 'torch' / 'cost_smoke.safetensors'
  assert run_cli('export', '--input', ours, '--output', exported) == 0
  ref = torch_reference.build_model(config, folder)
  torch_reference.load_exported(ref, str(exported))  # strict=True
  torch.save(ref.state_dict(), tmp_path / 'ref.pth')
  back = tmp_path / 'back.safetensors'
  assert (
      run_cli(
          'import',
          '--input',
          tmp_path / 'ref.pth',
          '--output',
          back,
          '--config',
          'configs/cost.py:smoke',
          f'--config.text.path={folder}',
      )
      == 0
  )
  restored = convert.load_converted(str(back), zeros_like_model(config))
  jax.tree.map(np.testing.assert_array_equal, restored, variables)
  # An Orbax checkpoint (any item layout holding 'params') exports the same.
  ocp.PyTreeCheckpointer().save(
      str(tmp_path / 'ckpt'), {'step': 7, 'state': variables}
  )
  from_orbax = tmp_path / 'from_orbax.safetensors'
  assert (
      run_cli('export', '--input', tmp_path / 'ckpt', '--output', from_orbax)
      == 0
  )
  a, _ = store.read(str(exported))
  b, _ = store.read(str(from_orbax))
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
