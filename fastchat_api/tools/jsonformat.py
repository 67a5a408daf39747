"""The ``json`` tool format, for models trained on no tool format of their own (any template
without one): the definitions and the shape of a call in the system turn, and a call answered
as a JSON object ``{"name": ..., "arguments": {...}}`` (a JSON array of them for several).

The answer is read leniently, as small models write it: text before the JSON, a code fence
around it, a ``tool_calls`` wrapper, ``parameters`` for ``arguments``, several objects in a row
(separated by ``;`` too, as llama-3.1 writes them). Results go back in a user turn, one JSON
object per result.
"""

from __future__ import annotations

from typing import Any, Sequence

from .base import Format, Result, Split, dumps
from .calls import Call, as_call, read_value

_STARTS = "{[`"  # a call (or the fence around it) can only begin with one of these
_FENCE = "```"


class JSONFormat(Format):
    name = "json"
    arguments_key = "arguments"
    instruction = (
        "You can call functions, described by these JSON objects (one per line):\n{tools}\n"
        "To call a function, answer with nothing but a JSON object "
        '{"name": <function name>, "arguments": <the arguments as a JSON object>}, or a JSON '
        "array of such objects to call several. Otherwise, answer in plain text without JSON."
    )

    def calls_text(self, calls: Sequence[tuple[str, Call]]) -> str:
        objects = [{"name": call.name, self.arguments_key: call.arguments} for _, call in calls]
        return dumps(objects[0] if len(objects) == 1 else objects)

    def results_text(self, results: Sequence[Result]) -> str:
        return "\n".join(dumps({"tool_call_id": result.call_id, "name": result.name,
                                "content": result.content}) for result in results)

    def opening(self, name: str | None) -> str:
        if name is None:
            return '{"name": "'
        return f'{{"name": {dumps(name)}, "{self.arguments_key}": '

    def hold(self, text: str) -> int:
        return len(text[: _first_start(text)].rstrip())

    def call_start(self, text: str) -> int | None:
        found = _first_start(text)
        return None if found == len(text) else found

    def split(self, text: str) -> Split:
        start = _first_start(text)
        at = text.find("\n", start) + 1 if text.startswith(_FENCE, start) else start
        calls: list[Call] = []
        while True:
            read = read_value(text, at)
            found = None if read is None else calls_in(read[0])
            if read is None or found is None:
                break
            calls += found
            at = _next(text, read[1])
        return Split(text[:start].rstrip(), calls) if calls else Split(text, [])


def _first_start(text: str) -> int:
    """Where a call may begin: the first ``{``, ``[`` or backtick, else the end."""
    return min((found for char in _STARTS if (found := text.find(char)) >= 0), default=len(text))


def _next(text: str, at: int) -> int:
    """Past the separators that may come between calls (whitespace, ``;``, ``,``)."""
    while at < len(text) and (text[at].isspace() or text[at] in ";,"):
        at += 1
    return at


def calls_in(value: Any) -> list[Call] | None:
    """The calls a JSON value holds: one call, a list of calls, or ``{"tool_calls": [...]}``."""
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    calls = [as_call(item.get("function", item) if isinstance(item, dict) else item) for item in items]
    return [call for call in calls if call is not None] if items and None not in calls else None
