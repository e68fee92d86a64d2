"""User errors: one line `error: <what>. Fix: <how>` and exit status 2.

Library code raises `UserError` for what the user can fix (a flag, a missing
file or folder, a malformed annotation, weights of another configuration),
usually through a class that is also the builtin type callers already catch:
`InvalidValue` is a ValueError, `NotFound` a FileNotFoundError. Each
command's main is wrapped by `exits_on_user_error`, which prints such an
error, or an OSError (a path that cannot be read or written), as one line on
stderr and returns `EXIT_STATUS`. Any other exception is a bug and keeps its
traceback.
"""

import functools
import sys

EXIT_STATUS = 2
FIX = '. Fix: '
_OS_FIX = 'check that the path exists and that you may read and write it'


class UserError(Exception):
  """An error the user can fix; str() is '<what>. Fix: <fix>'."""

  def __init__(self, what, fix=''):
    what = str(what)
    super().__init__(f'{_sentence(what)}{FIX}{fix}' if fix else what)


class InvalidValue(UserError, ValueError):
  """A flag, argument or file content that is not valid."""


class NotFound(UserError, FileNotFoundError):
  """A file or folder the user named (or the config points at) is missing."""


def message(error) -> str:
  """'error: <what>. Fix: <how>' on one line."""
  text = ' '.join(str(error).split())
  if FIX not in text and isinstance(error, OSError):
    text = f'{_sentence(text)}{FIX}{_OS_FIX}'
  return f'error: {text}'


def _sentence(text):
  """`text` without its closing full stop (an ellipsis stays)."""
  text = text.rstrip()
  return text[:-1] if text.endswith('.') and not text.endswith('..') else text


def exits_on_user_error(main):
  """`main` printing a user error (or OSError) as one line on stderr and
  returning EXIT_STATUS instead of raising it."""

  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except (UserError, OSError) as e:
      print(message(e), file=sys.stderr, flush=True)
      return EXIT_STATUS

  return wrapped
