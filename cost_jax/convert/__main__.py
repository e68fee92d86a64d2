"""CLI: python -m cost_jax.convert {transt,bert,resnet50,import,export} ...

Config overrides use main.py's syntax: --config=configs/cost.py:paper
--config.text.path=checkpoints/bert-base-uncased. A user error prints one
line `error: <what>. Fix: <how>` and exits with status 2 (cost_jax.errors).
"""

import argparse
import ast
import sys

from cost_jax import config_files
from cost_jax import errors
from cost_jax.convert import commands
from cost_jax.convert import exporting

DEFAULT_CONFIG = {
    'transt': 'configs/cost.py:paper,no_lb',
    'transt_cost': 'configs/cost.py:paper',
    'bert': 'configs/cost.py:paper',
    'resnet50': 'configs/cost.py:paper',
    'import': 'configs/cost.py:paper',
}


def load_config(spec, overrides=()):
  """'path/to/cost.py[:arg]' + ['text.path=X', ...] -> ConfigDict."""
  path, _, arg = spec.partition(':')
  module = config_files.load_module(path)
  try:
    config = module.get_config(arg or None)
  except ValueError as e:
    raise errors.InvalidValue(
        f'--config={spec}: {e}', f'use a variant that {path} defines'
    ) from None
  for item in overrides:
    key, _, value = item.partition('=')
    try:
      value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      pass
    node = config
    *parents, leaf = key.split('.')
    for name in parents:
      node = node.get(name) if hasattr(node, 'get') else None
    if node is None or not hasattr(node, 'get') or leaf not in node:
      raise errors.InvalidValue(
          f'--config.{key}: no such config field',
          f'use a field of {path} (see its get_config)',
      )
    node[leaf] = value
  return config


def _parser():
  parser = argparse.ArgumentParser(
      prog='python -m cost_jax.convert', description=__doc__
  )
  sub = parser.add_subparsers(dest='command', required=True)
  helps = {
      'transt': 'official TransT checkpoint (.pth) -> no_lb (or --target=cost)',
      'bert': 'HF BERT folder -> text encoder',
      'resnet50': 'torchvision ImageNet ResNet-50 (.pth) -> backbone',
      'import': 'torch_reference state_dict -> our variables',
      'export': 'our variables (converted file or Orbax dir) -> torch '
      'state_dict safetensors',
  }
  for name, text in helps.items():
    p = sub.add_parser(name, help=text)
    p.add_argument('--input', required=True)
    p.add_argument('--output', required=True, help='OUT.safetensors (+ .json)')
    if name == 'export':
      continue
    p.add_argument(
        '--config',
        default=None,
        help='config file[:variant]; default ' f'{DEFAULT_CONFIG[name]}',
    )
    p.add_argument(
        '--allow_missing',
        default='',
        help='regex of tensors that may be missing (left to the '
        'initialisation)',
    )
    if name == 'transt':
      p.add_argument('--target', default='no_lb', choices=('no_lb', 'cost'))
  return parser


@errors.exits_on_user_error
def main(argv=None):
  """Runs one conversion; returns 0, or errors.EXIT_STATUS with the user
  error on stderr."""
  argv = list(sys.argv[1:] if argv is None else argv)
  overrides = [a[len('--config.') :] for a in argv if a.startswith('--config.')]
  args = _parser().parse_args(
      [a for a in argv if not a.startswith('--config.')]
  )
  if args.command == 'export':
    exporting.export(args.input, args.output)
    print(
        f'Wrote {args.output} (torch state_dict; load with '
        'torch_reference.load_exported).'
    )
    return 0
  default = DEFAULT_CONFIG[
      'transt_cost' if getattr(args, 'target', '') == 'cost' else args.command
  ]
  config = load_config(args.config or default, overrides)
  run = {
      'transt': commands.convert_transt,
      'bert': commands.convert_bert,
      'resnet50': commands.convert_resnet50,
      'import': commands.convert_import,
  }[args.command]
  extra = {'target': args.target} if args.command == 'transt' else {}
  report = run(
      args.input, args.output, config, allow_missing=args.allow_missing, **extra
  )
  print(
      f'Wrote {args.output} for variant {config.variant!r}.'
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
