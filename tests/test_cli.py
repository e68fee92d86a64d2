"""One command-line stack: every entry point parses flags, --config overrides
and errors the same way (cost_jax.cli)."""

from absl import flags
from ml_collections import config_flags
import pytest

from cost_jax import ablations
from cost_jax import analyze
from cost_jax import cli
from cost_jax import errors
from cost_jax.convert import __main__ as convert_main
from cost_jax.export import __main__ as export_main
from input_pipeline import stats
from input_pipeline import synthetic

pytestmark = pytest.mark.unit


def _flags(argv=()):
  fv = flags.FlagValues()
  flags.DEFINE_string('out', None, 'where to write', flag_values=fv)
  flags.DEFINE_integer('n', 3, 'how many', flag_values=fv)
  config_flags.DEFINE_config_file(
      'config', None, 'a config', flag_values=fv, sys_argv=list(argv)
  )
  flags.mark_flag_as_required('out', flag_values=fv)
  return fv


def test_parse_returns_positionals_and_applies_typed_overrides():
  argv = cli.with_config(
      ['prog', 'sub', '--out=x', '--config.train.lr', '0.5'],
      'configs/cost.py:smoke',
  )
  assert argv[1] == '--config=configs/cost.py:smoke'
  fv = _flags(argv)
  assert cli.parse(fv, argv, 'prog', 'doc') == ['sub']
  assert fv.out == 'x' and fv.n == 3
  assert fv.config.variant == 'smoke' and fv.config.train.lr == 0.5


def test_with_config_keeps_a_given_config():
  for given in (['--config=a.py'], ['--config', 'a.py']):
    assert cli.with_config(['p', *given], 'b.py') == ['p', *given]


@pytest.mark.parametrize(
    'args, expected',
    [
        (['--n=many'], '--n=many'),
        (['--bogus=1', '--out=x'], 'bogus'),
        ([], '--out'),  # required
        (['--out=x', '--config.train.lr=fast'], 'lr=fast'),
        (['--out=x', '--config.train.no_field=1'], 'no config field'),
        (['--out=x', '--config=configs/cost.py:nope'], "variant 'nope'"),
    ],
)
def test_every_flag_error_is_one_user_error(args, expected):
  argv = cli.with_config(['prog', *args], 'configs/cost.py:smoke')
  with pytest.raises(errors.UserError) as info:
    cli.parse(_flags(argv), argv, 'prog', 'doc')
  text = errors.message(info.value)
  assert expected in text and 'Fix: ' in text and '\n' not in text


def test_help_lists_the_flags_and_exits_0(capsys):
  with pytest.raises(SystemExit) as info:
    cli.parse(_flags(), ['prog', '--help'], 'prog', 'The doc.')
  assert info.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith('The doc.')
  assert '--out: where to write\n    (required)' in out
  assert '--n: how many\n    (default: ' in out
  assert cli.required_flags(_flags()) == {'out'}


@pytest.mark.parametrize(
    'main, argv',
    [
        (convert_main.main, ['bert', '--input=i', '--output=o']),
        (export_main.main, ['--format=onnx', '--out=o', '--workdir=w']),
        (ablations.main, ['--workdir=w']),
    ],
)
def test_commands_refuse_a_bad_override_like_main(main, argv, capsys):
  extra = ['--config=configs/cost.py:smoke'] if main is export_main.main else []
  assert main([*argv, *extra, '--config.train.lr=fast']) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith('error: flag --config.train.lr=fast')
  assert 'Fix: see python -m cost_jax.' in err and '\n' not in err


@pytest.mark.parametrize(
    'main, argv',
    [
        (convert_main.main, ['transt', '--input=i']),
        (analyze.main, ['--dataset=lasot', '--root=r', '--out=o']),
        (analyze.main, ['pack', '--dataset=got10k', '--out=o']),
        (stats.main, ['--root=r']),
        (synthetic.main, []),
    ],
)
def test_commands_name_a_missing_required_flag(main, argv, capsys):
  assert main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert 'must have a value' in err and 'Fix: see python -m' in err
