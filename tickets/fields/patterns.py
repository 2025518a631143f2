"""Validation patterns (a text field's `validation.regex`) run on RE2: matching takes time linear
in the input whatever the pattern, so one tenant's `^(a+)+$` cannot hold a web worker.

RE2 has no backreferences or lookaround; such a pattern is refused when the template is saved.
Python's `\\uXXXX` escapes (common in patterns for Chinese text) are written the RE2 way."""

import functools
import logging
import re

import re2

logger = logging.getLogger(__name__)

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the user, not to stderr
_OPTIONS.max_mem = 8 << 20  # bounds the compiled program of a 200-character pattern

_PY_ESCAPE = re.compile(r"(\\+)(u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")


def _re2_syntax(pattern):
    def swap(match):
        slashes = match.group(1)
        if len(slashes) % 2 == 0:  # an escaped backslash followed by a literal "u…"
            return match.group(0)
        return slashes[:-1] + "\\x{" + (match.group(3) or match.group(4)) + "}"

    return _PY_ESCAPE.sub(swap, pattern)


class PatternError(ValueError):
    """The pattern is not one RE2 accepts."""


@functools.lru_cache(maxsize=512)
def pattern_compile(pattern):
    try:
        return re2.compile(_re2_syntax(pattern), options=_OPTIONS)
    except re2.error as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise PatternError(message.decode() if isinstance(message, bytes) else str(message)) from exc


def pattern_fullmatch(pattern, value):
    """True when `value` matches the whole pattern. A stored pattern RE2 refuses (saved before
    patterns were checked with it) checks nothing rather than falling back to a backtracking
    engine."""
    try:
        compiled = pattern_compile(pattern)
    except PatternError:
        logger.warning("validation pattern %r is not valid RE2; not checked", pattern)
        return True
    return compiled.fullmatch(value) is not None
