"""The command-line stack every entry point shares: absl flags and
ml_collections `config_flags`, with one error convention.

main.py defines its flags on absl's global FLAGS and runs under `absl.app`.
The other commands (`python -m cost_jax.convert`, `.export`, `.analyze`,
`.ablations`) build their flags on a fresh `FlagValues` at each call, so they
run in-process (tests, notebooks) any number of times. `parse` gives them all
the same `--help`, the same `--config=FILE[:variant]` and
`--config.FIELD=VALUE` overrides (config_flags: `--name=value` or
`--name value`, typed by the field) and the same errors: one line
`error: <what>. Fix: <how>` and exit status 2 (cost_jax.errors).
"""

from __future__ import annotations

import sys

from absl import flags

from cost_jax import errors

__all__ = [
    'HELP',
    'parse',
    'with_config',
    'flag_error',
    'help_text',
    'required_flags',
]

HELP = ('--help', '-h', '--helpfull', '--helpshort', '-?')
# absl's own flags, in every FlagValues: not the command's.
_ABSL_FLAGS = ('flagfile', 'undefok')
_REQUIRED = 'must have a value other than None'  # absl's required-flag check


def flag_error(err: Exception, program: str) -> errors.UserError:
  """A flag-parsing error as one user error (its first line, no traceback)."""
  if isinstance(err, flags.Error):
    text = str(err)
    if 'Traceback' in text:  # ml_collections puts the config's traceback in it
      text = f"{text.split('Traceback')[0]} {text.strip().splitlines()[-1]}"
    return errors.InvalidValue(text, f'see {program} --help')
  # config_flags raises these for --config.FIELD=... of no field.
  return errors.InvalidValue(
      f'a --config.FIELD=VALUE override names no config field ({err})',
      'use a field of the config file (see its get_config)',
  )


def required_flags(flag_values: flags.FlagValues) -> frozenset:
  """The names of the flags that must be given (absl's required check)."""
  return frozenset(
      name
      for name in flag_values
      if any(_REQUIRED in v.message for v in flag_values[name].validators)
  )


def help_text(flag_values: flags.FlagValues, doc: str, names=None) -> str:
  """`doc`, then one entry per flag (`names`, default all): its name, help,
  choices and default."""
  required = required_flags(flag_values)
  lines = [doc.strip(), '', 'Flags:']
  for name in flag_values if names is None else names:
    flag = flag_values[name]
    if name in _ABSL_FLAGS or flag.help.startswith('Alias for --'):
      continue
    spelling = f'--[no]{name}' if flag.boolean else f'--{name}'
    lines.append(f'  {spelling}: {flag.help}')  # an enum's help lists choices
    if name in required:
      lines.append('    (required)')
    elif flag.default is not None and flag.default != '':
      lines.append(f'    (default: {flag.default_as_str})')
  return '\n'.join(lines)


def with_config(argv, default: str) -> list[str]:
  """`argv` with `--config=default` after argv[0] unless it names a config.

  A config flag defined without a default parses nothing before the command
  line is read: an override error is then a flag error like any other.
  """
  given = any(a == '--config' or a.startswith('--config=') for a in argv[1:])
  return list(argv) if given else [argv[0], f'--config={default}', *argv[1:]]


def parse(
    flag_values: flags.FlagValues, argv, program: str, doc: str, names=None
) -> list[str]:
  """Parses `argv` (argv[0] is the program) into `flag_values`.

  Returns the positional arguments after argv[0]. `--help` prints
  `help_text` (of the flags `names`, default all) and exits with status 0; a
  bad flag, value or config override raises the user error `flag_error`
  makes of it.
  """
  argv = list(argv)
  if any(a in HELP for a in argv[1:]):
    print(help_text(flag_values, doc, names))
    raise SystemExit(0)
  try:
    return flag_values(argv)[1:]
  except (flags.Error, AttributeError, KeyError) as err:
    raise flag_error(err, program) from None


def argv_of(program: str, argv=None) -> list[str]:
  """The command line of `main(argv)`: `program`, then `argv` (a list
  without the program; None: this process's own arguments)."""
  return [program, *(sys.argv[1:] if argv is None else argv)]


def parse_flags_only(
    flag_values: flags.FlagValues, argv, program: str, doc: str
) -> flags.FlagValues:
  """`parse` for a command that takes no positional argument."""
  rest = parse(flag_values, argv, program, doc)
  if rest:
    raise errors.InvalidValue(
        f'unexpected arguments {rest}', 'pass every option as --name=value'
    )
  return flag_values
