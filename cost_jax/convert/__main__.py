"""CLI: python -m cost_jax.convert COMMAND --input=IN --output=OUT.safetensors

COMMAND is one of transt, bert, resnet50, import, export; `COMMAND --help`
lists its flags. The flags are main.py's (absl, cost_jax.cli): the config is
--config=configs/cost.py:VARIANT with --config.FIELD=VALUE overrides, e.g.
--config.text.path=checkpoints/bert-base-uncased. A user error prints one
line `error: <what>. Fix: <how>` and exits with status 2 (cost_jax.errors).
"""

import sys

from absl import flags
from ml_collections import config_flags

from cost_jax import cli
from cost_jax import errors
from cost_jax.convert import commands
from cost_jax.convert import exporting

PROGRAM = 'python -m cost_jax.convert'
COMMANDS = {
    'transt': 'official TransT checkpoint (.pth) -> no_lb (or --target=cost)',
    'bert': 'HF BERT folder -> text encoder',
    'resnet50': 'torchvision ImageNet ResNet-50 (.pth) -> backbone',
    'import': 'torch_reference state_dict -> our variables',
    'export': 'our variables (converted file or Orbax dir) -> torch '
    'state_dict safetensors',
}
DEFAULT_CONFIG = {
    'transt': 'configs/cost.py:paper,no_lb',
    'transt_cost': 'configs/cost.py:paper',
    'bert': 'configs/cost.py:paper',
    'resnet50': 'configs/cost.py:paper',
    'import': 'configs/cost.py:paper',
}


def default_config(command, argv) -> str:
  """The config a command converts for when no --config is given."""
  target_cost = any(
      a == '--target=cost' or (a == '--target' and b == 'cost')
      for a, b in zip(argv, [*argv[1:], ''])
  )
  return DEFAULT_CONFIG['transt_cost' if target_cost else command]


def make_flags(command, argv=()) -> flags.FlagValues:
  """The flags of one sub-command (`argv`: the command line they parse)."""
  fv = flags.FlagValues()
  flags.DEFINE_string(
      'input', None, 'the file or folder to read', flag_values=fv
  )
  flags.DEFINE_string(
      'output', None, 'OUT.safetensors (+ OUT.json)', flag_values=fv
  )
  flags.mark_flags_as_required(['input', 'output'], flag_values=fv)
  if command == 'export':
    return fv
  config_flags.DEFINE_config_file(
      'config',
      None,
      'config file[:variant] the weights are for (default '
      f'{DEFAULT_CONFIG[command]}); --config.FIELD=VALUE overrides a field',
      flag_values=fv,
      lock_config=True,
      sys_argv=list(argv),
  )
  flags.DEFINE_string(
      'allow_missing',
      '',
      'regex of tensors that may be missing (left to the initialisation)',
      flag_values=fv,
  )
  if command == 'transt':
    flags.DEFINE_enum(
        'target',
        'no_lb',
        ['no_lb', 'cost'],
        'no_lb: the TransT model; cost: the visual branch of COST',
        flag_values=fv,
    )
  return fv


def _command(argv):
  """The sub-command (argv[1]); --help without one lists them."""
  command = argv[1] if len(argv) > 1 else ''
  if command in cli.HELP:
    print(__doc__.strip() + '\n\nCommands:')
    for name, text in COMMANDS.items():
      print(f'  {name:<9} {text}')
    raise SystemExit(0)
  if command not in COMMANDS:
    raise errors.InvalidValue(
        f'{PROGRAM}: {command or "no command"!r} is not a command',
        f'start with one of {", ".join(COMMANDS)} (e.g. {PROGRAM} transt '
        '--input=transt.pth --output=transt.safetensors)',
    )
  return command


@errors.exits_on_user_error
def main(argv=None):
  """Runs one conversion; returns 0, or errors.EXIT_STATUS with the user
  error on stderr."""
  argv = cli.argv_of(PROGRAM, argv)
  command = _command(argv)
  argv = [f'{PROGRAM} {command}', *argv[2:]]
  if command != 'export':
    argv = cli.with_config(argv, default_config(command, argv))
  doc = f'{argv[0]} --input=IN --output=OUT: {COMMANDS[command]}'
  fv = cli.parse_flags_only(make_flags(command, argv), argv, argv[0], doc)
  if command == 'export':
    exporting.export(fv.input, fv.output)
    print(
        f'Wrote {fv.output} (torch state_dict; load with '
        'torch_reference.load_exported).'
    )
    return 0
  config = fv.config
  run = {
      'transt': commands.convert_transt,
      'bert': commands.convert_bert,
      'resnet50': commands.convert_resnet50,
      'import': commands.convert_import,
  }[command]
  extra = {'target': fv.target} if command == 'transt' else {}
  report = run(
      fv.input, fv.output, config, allow_missing=fv.allow_missing, **extra
  )
  print(
      f'Wrote {fv.output} for variant {config.variant!r}.'
      + (report.text() or '')
      + (
          f'\n  {len(report.ignored)} tensors ignored on purpose (e.g. '
          f'{report.ignored[0]}).'
          if report.ignored
          else ''
      )
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
