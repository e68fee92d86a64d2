"""Every command in the docs names a real script, module, flag and config field.

Commands come from README.md, BENCHMARKS.md, docs/*.md and
checkpoints/README.md: indented (4 spaces) and ``` fenced code blocks (not
```python ones) and inline `python ...` / `pip ...` code spans.
Backslash-continued lines are joined; `&&`, `||`, `;` and ` | ` split a line,
and a python command inside a wrapper (`srun python ...`, `gcloud ...
--command="... python ..."`) is checked on its own; other programs
(hf, git, gcloud itself) are ignored.  Nothing is trained:

* main.py: every --flag is an absl flag of main.py or a --config.<field>
  override of a field of the named variant (`configs.cost.get_config`), whose
  value parses as the field's type; the variant itself is valid.
* the other absl commands (cost_jax.convert and its sub-commands,
  cost_jax.analyze [pack], cost_jax.ablations, cost_jax.export,
  input_pipeline.stats, input_pipeline.synthetic): every flag, choice and
  required flag, read from the command's own `make_flags`, and its --config
  overrides checked as main.py's.
* argparse commands (benchmarks.* and benchmarks/*.py): every flag, choice and
  required flag, matched against the command's own `--help` (run once per
  command).
* pip: the requirements file exists; pytest: the test paths exist.

Values such as DIR, /data/..., $BUCKET are placeholders and pass.  The Python
API example of docs/tracking.md and its `--mode=track` commands on a video file
or frame folder really run, on a generated clip with an untrained `demo`
checkpoint.
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys

from absl import flags
import cv2
import jax
import numpy as np
import pytest

from configs import cost
from cost_jax import ablations
from cost_jax import cli
from cost_jax.checkpointing import Checkpoints
from cost_jax.convert import __main__ as convert_main
from cost_jax.evaluation.protocols import PROTOCOLS
from cost_jax.models import factory
from tests.test_track_video import fourcc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ['README.md', 'BENCHMARKS.md', 'checkpoints/README.md'] + sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, 'docs', '*.md'))
)
PROGRAMS = ('python', 'python3', 'pip', 'pip3')
# `python -m NAME` -> the module whose make_flags(...) builds its absl flags.
ABSL_MODULES = {
    'cost_jax.convert': 'cost_jax.convert.__main__',
    'cost_jax.analyze': 'cost_jax.analyze',
    'cost_jax.ablations': 'cost_jax.ablations',
    'cost_jax.export': 'cost_jax.export.__main__',
    'input_pipeline.stats': 'input_pipeline.stats',
    'input_pipeline.synthetic': 'input_pipeline.synthetic',
}
CONFIG_GROUPS = ('model', 'text', 'loss', 'data', 'train', 'track')


@dataclasses.dataclass(frozen=True)
class Command:
  """One python/pip command of a doc: where it is and its words."""

  where: str
  argv: tuple

  def __str__(self):
    return f'{self.where}: {shlex.join(self.argv)}'


# --- extraction ----------------------------------------------------------------------------
def snippets(text):
  """Yields (line number, kind, text) of the code in a markdown text.

  kind: 'shell' (indented or fenced block), 'python' (```python block) or
  'inline' (a `python ...` / `pip ...` code span).
  """
  lines = text.split('\n')
  i = 0
  while i < len(lines):
    fence = re.match(r'\s*(```|~~~)\s*(\w*)', lines[i])
    if fence:
      end = next(
          (
              j
              for j in range(i + 1, len(lines))
              if lines[j].strip().startswith(fence.group(1))
          ),
          len(lines),
      )
      kind = 'python' if fence.group(2).lower() in ('python', 'py') else 'shell'
      yield i + 2, kind, '\n'.join(lines[i + 1 : end])
      i = end + 1
      continue
    if lines[i].startswith('    ') and (i == 0 or not lines[i - 1].strip()):
      end = i
      while end < len(lines) and (
          lines[end].startswith('    ') or not lines[end].strip()
      ):
        end += 1
      yield i + 1, 'shell', '\n'.join(line[4:] for line in lines[i:end])
      i = end
      continue
    for span in re.findall(r'`([^`\n]+)`', lines[i]):
      if span.split()[0] in PROGRAMS:
        yield i + 1, 'inline', span
    i += 1


def _balance_quotes(segment):
  """Drops one unmatched quote (a wrapper's --command="... split by && or a newline)."""
  for quote in '"\'':
    if segment.count(quote) % 2:
      k = (
          segment.rfind(quote)
          if segment.rstrip().endswith(quote)
          else segment.find(quote)
      )
      segment = segment[:k] + segment[k + 1 :]
  return segment


def _clean(words):
  """Removes the optional-argument brackets of `[--size 320x240]` and `...` words."""
  out = []
  for w in words:
    if w in ('...', '…'):
      continue
    if w.startswith('[-'):
      w = w[1:]
    if w.endswith(']') and '[' not in w:
      w = w[:-1]
    out.append(w)
  return tuple(out)


def commands_in_shell(text, first_line, source):
  """The python/pip commands of a shell snippet (continuations joined, wrappers skipped)."""
  found, line_no, pending, start = [], first_line, '', first_line
  for raw in text.split('\n') + ['']:
    if not pending:
      start = line_no
    line_no += 1
    if raw.rstrip().endswith('\\'):
      pending += raw.rstrip()[:-1] + ' '
      continue
    logical, pending = pending + raw, ''
    for segment in re.split(r'&&|\|\||;|\s\|\s', logical):
      segment = _balance_quotes(segment)
      if not re.search(r'(^|[\s"\'])(python3?|pip3?)\s', segment + ' '):
        continue
      try:
        words = shlex.split(segment, comments=True)
      except ValueError as e:
        found.append(
            Command(f'{source}:{start}', ('<unsplittable>', segment, str(e)))
        )
        continue
      k = next(
          (k for k, w in enumerate(words) if os.path.basename(w) in PROGRAMS),
          None,
      )
      if k is not None:
        found.append(Command(f'{source}:{start}', _clean(words[k:])))
  return found


def commands_in_text(text, source):
  """Every python/pip command in a markdown text."""
  found = []
  for line_no, kind, code in snippets(text):
    if kind != 'python':
      found += commands_in_shell(code, line_no, source)
  return found


def doc_text(path):
  with open(os.path.join(ROOT, path), encoding='utf-8') as f:
    return f.read()


def all_commands():
  return [c for path in DOCS for c in commands_in_text(doc_text(path), path)]


COMMANDS = all_commands()


# --- values, config fields -----------------------------------------------------------------
def is_placeholder(value):
  """DIR, N, COMMAND, $BUCKET, <name>, ... stand for the user's values."""
  return bool(
      re.fullmatch(r'[A-Z][A-Z0-9_]*', value)
      or any(m in value for m in ('$', '<', '...', '…'))
  )


@functools.lru_cache(maxsize=None)
def load_config(spec):
  """'configs/cost.py:demo,no_lb' -> (ConfigDict, problem or None); '[...]' is optional syntax."""
  path, _, variant = re.sub(r'\[[^\]]*\]', '', spec).partition(':')
  if not os.path.isfile(os.path.join(ROOT, path)):
    return None, f'no config file {path!r}'
  if path != 'configs/cost.py':
    return None, f'unexpected config file {path!r}'
  try:
    return cost.get_config(variant or None), None
  except ValueError as e:
    return None, f'--config={spec}: {e}'


def _value_problem(key, current, value):
  """Why `value` cannot set a field holding `current`, or None."""
  if is_placeholder(value) or isinstance(current, (str, tuple, list)):
    return None
  try:
    if isinstance(current, bool):
      if value.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(value)
    elif isinstance(current, int):
      int(value)
    elif isinstance(current, float):
      float(value)
  except ValueError:
    return f'--config.{key}={value!r}: not a valid {type(current).__name__}'
  return None


def config_field_problem(config, key, value=None):
  """Why `config.<key>` (dotted, `<name>` = any) is not a field, or None."""
  node = config
  parts = key.split('.')
  for k, part in enumerate(parts):
    if is_placeholder(part):
      return None
    if not hasattr(node, 'keys') or part not in node:
      return f'config.{".".join(parts[:k + 1])} is not a field of variant {config.variant!r}'
    node = node[part]
  if hasattr(node, 'keys'):
    return (
        f'config.{key} is a group, not a field' if value is not None else None
    )
  return None if value is None else _value_problem(key, node, value)


# --- absl commands: main.py and every `python -m` entry point ---------------------------------
@functools.lru_cache(maxsize=None)
def main_flags():
  """{name: absl Flag} of main.py (imported, not run)."""
  # Lazy: importing main defines its absl flags on the global FLAGS; only the
  # tests that need them do, once (cached).
  import main  # noqa: F401

  return {name: flags.FLAGS[name] for name in flags.FLAGS}


def command_flags(target, sub=None):
  """({name: absl Flag}, required names) of `python [-m] TARGET [SUB]`."""
  if target == 'main.py':
    return main_flags(), frozenset()
  module = importlib.import_module(ABSL_MODULES[target])
  takes_sub = target in ('cost_jax.convert', 'cost_jax.analyze')
  fv = module.make_flags(sub) if takes_sub else module.make_flags()
  return {name: fv[name] for name in fv}, cli.required_flags(fv)


def _sub_command(target, words):
  """(sub-command, problem) taken off the front of `words`."""
  if target == 'cost_jax.analyze' and words[:1] == ['pack']:
    return words.pop(0), None
  if target != 'cost_jax.convert':
    return None, None
  if not words or words[0].startswith('-'):
    return (
        None,
        f'{target}: no sub-command (one of {tuple(convert_main.COMMANDS)})',
    )
  sub = words.pop(0)
  if sub not in convert_main.COMMANDS and not is_placeholder(sub):
    return (
        None,
        f'{target}: {sub!r} is not one of {tuple(convert_main.COMMANDS)}',
    )
  return sub, None


def default_config(target, sub, args):
  """The config file a command reads when no --config is given (None: none)."""
  if target == 'main.py':
    return 'configs/cost.py'
  if target == 'cost_jax.ablations':
    return ablations.DEFAULT_CONFIG
  if target == 'cost_jax.convert' and sub != 'export':
    return convert_main.default_config(sub, list(args))
  return None


def _config_problems(target, sub, args, defined):
  """The --config spec and its --config.FIELD overrides of a command line."""
  overrides = [a[2:] for a in args if a.startswith('--config.')]
  if 'config' not in defined:
    return ['--config.<field> overrides: the command takes no config'] * bool(
        overrides
    ), None
  spec = next(
      (a.split('=', 1)[1] for a in args if a.startswith('--config=')),
      default_config(target, sub, args),
  )
  if spec is None:
    return ['--config.<field> overrides need --config'] * bool(overrides), None
  config, problem = load_config(spec)
  return [problem] if problem else [], config


def check_absl(target, args):
  """Problems of `python [-m] TARGET ARGS` for an absl command."""
  words = list(args)
  sub, problem = _sub_command(target, words)
  if problem:
    return [problem]
  if sub is not None and is_placeholder(sub):
    return [
        f'{target} {sub}: a placeholder sub-command takes no flags here'
    ] * bool(words)
  defined, required = command_flags(target, sub)
  problems, config = _config_problems(target, sub, args, defined)
  where = f'{target}{" " + sub if sub else ""}'
  seen = set()
  while words:
    word = words.pop(0)
    if not word.startswith('--'):
      problems.append(f'{where}: unexpected argument {word!r} (flags only)')
      continue
    name, eq, value = word[2:].partition('=')
    if name.startswith('config.') and 'config' in defined:
      if config is not None:
        problem = config_field_problem(config, name[len('config.') :], value)
        problems += [problem] if problem else []
      continue
    flag = defined.get(name)
    if flag is None and name.startswith('no'):
      flag = defined.get(name[2:])
    if flag is None or (name not in defined and not flag.boolean):
      problems.append(
          f'{where}: --{name} is not a flag (known: {", ".join(sorted(defined))})'
      )
      continue
    seen.add(flag.name)
    if not eq and not flag.boolean and words:
      value = words.pop(0)
    choices = getattr(getattr(flag, 'parser', None), 'enum_values', None)
    if choices and not is_placeholder(value):
      problems += [
          f'--{name}={v}: not one of {choices}'
          for v in value.split('|')
          if v not in choices
      ]
  problems += [
      f'{where}: required --{r} missing' for r in sorted(required - seen)
  ]
  return problems


# --- argparse commands ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Option:
  takes_value: bool
  many: bool
  choices: tuple


@dataclasses.dataclass(frozen=True)
class Usage:
  """What a command's --help says: its options, required flags and sub-commands."""

  options: dict
  required: frozenset
  subcommands: tuple


def _help_argv(target, sub=None):
  head = [sys.executable] + (
      ['-m', target] if not target.endswith('.py') else [target]
  )
  return head + ([sub] if sub else []) + ['--help']


_HELP = {}


def help_text(target, sub=None):
  """`python TARGET [SUB] --help`, run once (cwd: the repository root)."""
  if (target, sub) not in _HELP:
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
    out = subprocess.run(
        _help_argv(target, sub),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        out.returncode == 0
    ), f'{_help_argv(target, sub)} failed:\n{out.stderr[-2000:]}'
    _HELP[(target, sub)] = out.stdout
  return _HELP[(target, sub)]


def parse_help(text):
  """Usage of an argparse --help text."""
  options = {}
  for m in re.finditer(
      r'^  (?:-\w(?: \w+)?, )?(--[\w-]+)(?:[ =](\{[^}]*\}|[A-Z][A-Z0-9_]*)'
      r'( \[[A-Z0-9_]+ \.\.\.\])?)?',
      text,
      re.M,
  ):
    value = m.group(2) or ''
    choices = tuple(value[1:-1].split(',')) if value.startswith('{') else ()
    options[m.group(1)] = Option(bool(value), bool(m.group(3)), choices)
  usage = text.split('\n\n')[0]
  required = frozenset(
      m.group(2)
      for m in re.finditer(r'(\[?)(--[\w-]+)', usage)
      if not m.group(1)
  )
  subs = re.search(r'\{([\w,-]+)\} \.\.\.', usage)
  return Usage(
      options, required, tuple(subs.group(1).split(',')) if subs else ()
  )


def usage_of(target, sub=None):
  return parse_help(help_text(target, sub))


def check_argparse(target, args):
  """Problems of `python TARGET ARGS` for an argparse command."""
  words = list(args)
  usage, sub, problems = usage_of(target), None, []
  if usage.subcommands:
    if not words or words[0].startswith('-'):
      return [f'{target}: no sub-command (one of {usage.subcommands})']
    sub = words.pop(0)
    if is_placeholder(sub):
      return (
          [f'{target} {sub}: a placeholder sub-command takes no flags here']
          if words
          else []
      )
    if sub not in usage.subcommands:
      return [f'{target}: {sub!r} is not one of {usage.subcommands}']
    usage = usage_of(target, sub)
  seen = set()
  while words:
    word = words.pop(0)
    if not word.startswith('-'):
      problems.append(f'{target}: unexpected argument {word!r}')
      continue
    name, eq, value = word.partition('=')
    option = usage.options.get(name)
    if option is None:
      problems.append(
          f'{target}{" " + sub if sub else ""}: {name} is not accepted '
          f'(known: {", ".join(sorted(usage.options))})'
      )
      continue
    seen.add(name)
    values = [value] if eq else []
    if option.takes_value and not eq:
      while (
          words and not words[0].startswith('-') and (option.many or not values)
      ):
        values.append(words.pop(0))
    if option.choices:
      problems += [
          f'{name} {v}: not one of {option.choices}'
          for v in values
          if not is_placeholder(v) and v not in option.choices
      ]
  problems += [
      f'{target}: required {r} missing' for r in sorted(usage.required - seen)
  ]
  return problems


# --- any command ---------------------------------------------------------------------------
def _target(args):
  """(script or module, the arguments after it) of `python ARGS`."""
  if args[:1] == ('-m',) and len(args) > 1:
    return args[1], args[2:]
  return (args[0], args[1:]) if args else ('', ())


def is_argparse(target):
  """Whether `python [-m] TARGET` is an argparse command (the benchmarks)."""
  return bool(re.fullmatch(r'benchmarks(/\w+\.py|\.\w+)', target))


def check_python(args):
  """Problems of `python ARGS`."""
  target, rest = _target(args)
  if args[:1] == ('-m',):
    try:
      found = importlib.util.find_spec(target) is not None
    except ImportError:
      found = False
    if not found:
      return [f'no module {target!r}']
  elif not target.endswith('.py') or not os.path.isfile(
      os.path.join(ROOT, target)
  ):
    return [f'no script {target!r}']
  if not rest:  # `python -m cost_jax.convert` names the tool: it exists
    return []
  if target == 'main.py' or target in ABSL_MODULES:
    return check_absl(target, rest)
  if is_argparse(target):
    return check_argparse(target, rest)
  if target == 'pytest':
    return [
        f'no test path {p!r}'
        for p in rest
        if not p.startswith('-') and not os.path.exists(os.path.join(ROOT, p))
    ]
  return [f'{target}: tests/test_docs.py has no checker for it; add one']


def check(command):
  """Problems of one doc command (empty: fine)."""
  argv = command.argv
  if argv[0] == '<unsplittable>':
    return [f'cannot split {argv[1]!r}: {argv[2]}']
  if os.path.basename(argv[0]).startswith('pip'):
    rest = argv[1:]
    if rest[:1] != ('install',):
      return [f'unexpected pip command {shlex.join(argv)}']
    return [
        f'no requirements file {f!r}'
        for flag, f in zip(rest, rest[1:])
        if flag == '-r' and not os.path.isfile(os.path.join(ROOT, f))
    ]
  return check_python(argv[1:])


@pytest.fixture(scope='module')
def help_texts():
  """Runs every needed `--help` at once (threads: each is a subprocess)."""
  wanted = set()
  for c in COMMANDS:
    target, rest = _target(c.argv[1:])
    if is_argparse(target):
      wanted.add((target, None))
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(lambda ts: help_text(*ts), sorted(wanted, key=str)))
  return _HELP


# --- tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize('command', COMMANDS, ids=[c.where for c in COMMANDS])
def test_doc_command(command, help_texts):
  problems = check(command)
  assert not problems, f'{command}\n  ' + '\n  '.join(problems)


def test_every_doc_page_has_commands():
  where = {c.where.split(':')[0] for c in COMMANDS}
  for page in (
      'README.md',
      'docs/training.md',
      'docs/evaluation.md',
      'docs/tracking.md',
      'docs/scaling.md',
      'checkpoints/README.md',
      'BENCHMARKS.md',
  ):
    assert page in where, f'no command found in {page}'
  modules = {
      _target(c.argv[1:])[0] for c in COMMANDS if c.argv[0].startswith('python')
  }
  assert {
      'main.py',
      'cost_jax.convert',
      'cost_jax.analyze',
      'input_pipeline.stats',
      'pytest',
  } <= modules, modules


def test_extraction_joins_lines_and_unwraps_wrappers():
  doc = '\n'.join(
      [
          'Text with `python -m cost_jax.analyze --help` and `pip install x` and `ffmpeg -i a`.',
          '',
          '```',
          'gcloud compute tpus tpu-vm ssh $TPU --worker=all --command="',
          '  cd cost-jax && python main.py --config=configs/cost.py \\',
          '    --workdir=gs://$BUCKET/x --distributed"',
          '#SBATCH --nodes=4',
          'srun python main.py --workdir=/nfs/x  # a comment',
          'hf download bert-base-uncased --local-dir x',
          '```',
          '',
          '```python',
          'import os  # python code is not a command: python main.py',
          '```',
          '',
          '    XLA_FLAGS=--x python benchmarks/input_pipeline.py [--size 320x240] ...',
          '    from configs import cost',
      ]
  )
  got = [(c.where, c.argv) for c in commands_in_text(doc, 'doc')]
  assert got == [
      ('doc:1', ('python', '-m', 'cost_jax.analyze', '--help')),
      ('doc:1', ('pip', 'install', 'x')),
      (
          'doc:5',
          (
              'python',
              'main.py',
              '--config=configs/cost.py',
              '--workdir=gs://$BUCKET/x',
              '--distributed',
          ),
      ),
      ('doc:8', ('python', 'main.py', '--workdir=/nfs/x')),
      (
          'doc:16',
          ('python', 'benchmarks/input_pipeline.py', '--size', '320x240'),
      ),
  ]


BAD_DOC = """
Inline: `python -m cost_jax.analyze --dataset lasot --root R --results A B --out O --bogus 1`.

    python main.py --config=configs/cost.py:demo --workdir=runs/x \\
        --no_such_flag=1 --config.train.no_such_field=3
    python main.py --config=configs/cost.py:demo,not_a_variant --workdir=runs/x
    python main.py --config=configs/cost.py --config.train.batch_size=big --mode=fly
    python -m cost_jax.convert transt --input=a.pth --output=b --config.model.nope=1
    python -m cost_jax.convert transplant --input=a.pth --output=b
    python -m cost_jax.no_such_module --x=1
    python benchmarks/no_such_script.py
    python -m cost_jax.analyze --dataset lasot --root R --results A --out O --protocol nope
    python -m input_pipeline.stats --root R
    python -m pytest -q tests/test_no_such_file.py
"""
BAD_EXPECTED = (
    ['--bogus is not a flag', "unexpected argument 'B'"],
    [
        '--no_such_flag is not a flag',
        'config.train.no_such_field is not a field',
    ],
    ["Unknown config variant 'not_a_variant'"],
    ["batch_size='big': not a valid int", '--mode=fly: not one of'],
    ['config.model.nope is not a field'],
    ["'transplant' is not one of"],
    ["no module 'cost_jax.no_such_module'"],
    ["no script 'benchmarks/no_such_script.py'"],
    ['--protocol=nope: not one of'],
    ['required --dataset missing'],
    ["no test path 'tests/test_no_such_file.py'"],
)


def test_made_up_flags_fields_and_variants_are_reported(help_texts):
  commands = commands_in_text(BAD_DOC, 'bad')
  assert len(commands) == len(BAD_EXPECTED)
  for command, expected in zip(commands, BAD_EXPECTED):
    problems = '\n'.join(check(command))
    for text in expected:
      assert (
          text in problems
      ), f'{command}: {text!r} not reported in:\n{problems}'


def config_mentions(text):
  """`config.<group>.<field>` and `--config.<group>.<field>` named in inline code spans."""
  pattern = r'(?<![\w.])(?:--)?config\.((?:%s)(?:\.[\w<>]+)*)' % '|'.join(
      CONFIG_GROUPS
  )
  return [
      m
      for span in re.findall(r'`([^`\n]+)`', text)
      for m in re.findall(pattern, span)
  ]


def test_config_fields_named_in_the_docs_exist():
  configs = [cost.get_config(v) for v in ('paper', 'demo', 'smoke')]
  problems, count = [], 0
  for path in DOCS:
    for key in config_mentions(doc_text(path)):
      count += 1
      if all(config_field_problem(c, key) for c in configs):
        problems.append(f'{path}: config.{key} is not a config field')
  assert count > 20 and not problems, problems
  assert config_field_problem(
      configs[0], 'track.no_such_field'
  )  # the check can fail


def test_every_protocol_is_documented():
  text = doc_text('docs/evaluation.md')
  missing = [name for name in PROTOCOLS if f'| `{name}` |' not in text]
  assert not missing, f'docs/evaluation.md has no row for protocols {missing}'


# --- the tracking page runs ----------------------------------------------------------------
BOX = (120, 80, 14, 12)


def triangle_frames(n=6, size=(320, 240)):
  """BGR frames: a red triangle in BOX moving left on grey."""
  frames = []
  for t in range(n):
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    x, y, w, h = BOX
    points = np.array(
        [[x - 3 * t, y + h], [x + w - 3 * t, y + h], [x + w // 2 - 3 * t, y]]
    )
    cv2.fillPoly(frame, [points.astype(np.int32)], (0, 0, 230))
    frames.append(frame)
  return frames


def write_clip(folder, frames):
  """clip.mp4 and frames/clip/000001.jpg ... in `folder`."""
  h, w = frames[0].shape[:2]
  writer = cv2.VideoWriter(
      os.path.join(folder, 'clip.mp4'),
      cv2.VideoWriter_fourcc(*'mp4v'),
      10.0,
      (w, h),
  )
  assert writer.isOpened()
  os.makedirs(os.path.join(folder, 'frames', 'clip'))
  for i, frame in enumerate(frames):
    writer.write(frame)
    cv2.imwrite(
        os.path.join(folder, 'frames', 'clip', f'{i + 1:06d}.jpg'), frame
    )
  writer.release()


def write_demo_checkpoint(workdir):
  """An untrained `demo` checkpoint as training writes it (zeros: no init compile)."""
  config = cost.get_config('demo')
  model, spec = factory.create_model(config)
  variables = jax.tree.map(
      lambda s: np.zeros(s.shape, s.dtype), factory.variable_shapes(model, spec)
  )
  state = {
      'step': 1,
      'params': variables['params'],
      'batch_stats': variables['batch_stats'],
      'opt_state': {'count': np.zeros((), np.int32)},
  }
  checkpoints = Checkpoints(workdir, config, every=1, keep=1, async_save=False)
  checkpoints.save(1, state, force=True)
  checkpoints.close()


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
  """A folder with configs/, runs/demo (a checkpoint), clip.mp4 and frames/clip/."""
  folder = str(tmp_path_factory.mktemp('docs_demo'))
  os.symlink(os.path.join(ROOT, 'configs'), os.path.join(folder, 'configs'))
  write_clip(folder, triangle_frames())
  write_demo_checkpoint(os.path.join(folder, 'runs', 'demo'))
  return folder


def python_blocks(path):
  return [
      code for _, kind, code in snippets(doc_text(path)) if kind == 'python'
  ]


def test_python_api_example_runs(demo_run, monkeypatch, capsys):
  blocks = python_blocks('docs/tracking.md')
  assert len(blocks) == 1, 'docs/tracking.md should hold one ```python example'
  monkeypatch.chdir(demo_run)
  namespace = {'__name__': 'docs_tracking_example'}
  exec(compile(blocks[0], 'docs/tracking.md', 'exec'), namespace)  # noqa: S102
  printed = [
      line for line in capsys.readouterr().out.splitlines() if line.strip()
  ]
  assert len(printed) == len(triangle_frames()) - 1, printed
  assert namespace['box'].shape == (4,) and np.all(
      np.isfinite(namespace['box'])
  )
  assert 0.0 <= namespace['score'] <= 1.0


@contextlib.contextmanager
def absl_flags(argv):
  """main.py's flags parsed from `argv`, unparsed afterwards."""
  main_flags()
  flags.FLAGS(list(argv))
  try:
    yield flags.FLAGS
  finally:
    flags.FLAGS.unparse_flags()


def test_track_commands_run(demo_run, monkeypatch):
  """The --mode=track commands on a video file or frame folder run (camera and stream
  commands are only checked: tests/test_live.py tracks a stream)."""
  # Lazy: importing main defines its absl flags on the global FLAGS (see
  # main_flags).
  import main

  track = [
      c
      for c in COMMANDS
      if c.where.startswith('docs/tracking.md') and '--mode=track' in c.argv
  ]
  local = [
      c
      for c in track
      if any(a in ('--video=clip.mp4', '--video=frames/clip') for a in c.argv)
  ]
  assert (
      len(local) == 3 and len(track) == 5
  ), track  # file, folder, scores; stream, camera
  monkeypatch.chdir(demo_run)
  for command in local:
    argv = command.argv[1:]
    assert not any(
        a.startswith('--config.') for a in argv
    ), 'overrides need a subprocess'
    with absl_flags(argv) as parsed:
      main.main([argv[0]])
      video = os.path.splitext(
          os.path.basename(os.path.normpath(parsed.video))
      )[0]
      out = parsed.out or os.path.join(parsed.workdir, 'track', video)
    with open(os.path.join(out, 'boxes.txt'), encoding='utf-8') as f:
      lines = f.read().splitlines()
    assert lines[0] == '120.000,80.000,14.000,12.000' and len(lines) == len(
        triangle_frames()
    )
    with open(os.path.join(out, 'scores.txt'), encoding='utf-8') as f:
      assert len(f.read().split()) == len(triangle_frames())
    assert fourcc(os.path.join(out, 'tracked.mp4')) in ('avc1', 'h264'), command
