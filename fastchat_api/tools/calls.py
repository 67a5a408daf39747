"""Tool calls read out of a model's text: the JSON object of one call, and the ids the answer
gives them.

Every format writes a call as a JSON object naming the function and its arguments (``arguments``,
or ``parameters`` in llama-3's format; both are read in every format, and arguments sent as a
JSON string are read too, as small models write them). What the object holds is checked by the
guide (``tools.guide``); here it is only read.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ..ids import new_id
from ..jsonvalue import ValueEnd, parse


class Call(NamedTuple):
    """One call the model wrote: the function's ``name`` and its ``arguments`` object."""

    name: str
    arguments: Any  # an object; in a past call the client sent, whatever it sent


def call_id() -> str:
    """A new call's id, in OpenAI's form (``call_`` and 22 random characters)."""
    return new_id("call_")


def as_call(value: Any) -> Call | None:
    """The call a JSON value describes (``{"name": ..., "arguments": {...}}``), or None."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = parse(arguments).value if arguments.strip() else {}
    return Call(value["name"], arguments) if isinstance(arguments, dict) else None


def read_value(text: str, start: int) -> tuple[Any, int] | None:
    """The JSON value beginning at or after ``start`` (whitespace skipped) and where it ends,
    or None when the text holds no complete, valid one there."""
    end = ValueEnd()
    stop = end.finish(text[start:])
    if stop is None:
        return None
    parsed = parse(text[start : start + stop])
    return None if parsed.error is not None else (parsed.value, start + stop)


def arguments_text(arguments: dict[str, Any]) -> str:
    """The arguments as the answer's ``function.arguments`` string (compact JSON, as OpenAI)."""
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
