"""A JSON value read out of generated text: where it ends, as the text grows, and what it is.

A model asked for JSON writes a value and often goes on (a closing remark, another value); a
worker's stream is cumulative text. :class:`ValueEnd` reads that text once, as it grows, and
says where the first JSON value ends, or that it can no longer be JSON (a bracket closed by the
wrong one), so that the generation can be stopped there; :func:`parse` then reads the value
with the standard library, which checks the rest of JSON's grammar (RFC 8259).

Shared by everything that reads JSON out of a model (structured outputs; tool calls).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

_CLOSERS = {"{": "}", "[": "]"}
_SCALAR = frozenset("0123456789+-.eEtruefalsn")  # what numbers, true, false and null are made of
_WHITESPACE = " \t\n\r"


class ValueEnd:
    """Where the first JSON value in a growing text ends.

    Feed it the whole text so far each time (``feed``); it reads only what is new. Structure
    only: strings (with their escapes) and the nesting of objects and arrays are followed, and
    a value is complete when its outermost bracket or quote closes; a scalar at the top level
    (a number, ``true``, ...) ends at the first character that cannot continue it, or with the
    text (``finish``). Whether the value is valid JSON is :func:`parse`'s to say.
    """

    __slots__ = ("start", "end", "broken", "_at", "_open", "_in_string", "_escaped", "_scalar")

    def __init__(self) -> None:
        self.start: int | None = None  # where the value begins
        self.end: int | None = None  # just past its last character, once complete
        self.broken = False  # the text can no longer be a JSON value
        self._at = 0
        self._open: list[str] = []  # the closers still owed, innermost last
        self._in_string = False
        self._escaped = False
        self._scalar = False

    @property
    def done(self) -> bool:
        """Complete or broken: reading on cannot change the verdict."""
        return self.end is not None or self.broken

    def feed(self, text: str) -> int | None:
        """Read ``text`` (the previous text and what follows it); the end once complete."""
        while not self.done and self._at < len(text):
            self._step(text[self._at])
            self._at += 1
        return self.end

    def finish(self, text: str) -> int | None:
        """The text is all there is: a top-level scalar ends with it."""
        self.feed(text)
        if self.end is None and self._scalar:
            self.end = self._at
        return self.end

    def _step(self, char: str) -> None:
        if self.start is None:
            if char in _WHITESPACE:
                return
            self.start = self._at
            self._scalar = char not in _CLOSERS and char != '"'
        if self._scalar:
            self._scalar_step(char)
        elif self._in_string:
            self._string_step(char)
        elif char == '"':
            self._in_string = True
        elif char in _CLOSERS:
            self._open.append(_CLOSERS[char])
        elif char in "}]":
            if not self._open or self._open.pop() != char:
                self.broken = True
            elif not self._open:
                self.end = self._at + 1

    def _string_step(self, char: str) -> None:
        if self._escaped:
            self._escaped = False
        elif char == "\\":
            self._escaped = True
        elif char == '"':
            self._in_string = False
            if not self._open:
                self.end = self._at + 1

    def _scalar_step(self, char: str) -> None:
        if char not in _SCALAR:
            self.end = self._at


class Parsed(NamedTuple):
    """A value read from text, or why none could be: ``error`` is None when ``value`` holds;
    ``cut_short`` when the text is a JSON value's beginning that ended too soon."""

    value: Any
    error: str | None = None
    cut_short: bool = False


def parse(text: str) -> Parsed:
    """The JSON value ``text`` holds (surrounding whitespace allowed), or the parser's reason
    (``"Expecting ',' delimiter: line 1 column 9 (char 8)"``). NaN and the infinities, which
    JSON does not have, are refused, and so is a value nested deeper than the standard
    library's parser can follow (its ``RecursionError``; a client's or a model's text alike)."""
    try:
        return Parsed(json.loads(text, parse_constant=_no_constant))
    except RecursionError:
        return Parsed(None, "the value is nested too deeply to read")
    except json.JSONDecodeError as exc:
        end = ValueEnd()
        end.finish(text)
        short = end.end is None and not end.broken and (
            exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"))
        return Parsed(None, str(exc), short)
    except ValueError as exc:
        return Parsed(None, str(exc))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
