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
_MAX_STARTS = 8  # places a call is looked for in one text (``JSONFormat.split``)


class JSONFormat(Format):
    name = "json"
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

    def hold(self, text: str) -> int:
        return len(text[: _first_start(text)].rstrip())

    def call_start(self, text: str) -> int | None:
        found = _first_start(text)
        return None if found == len(text) else found

    def split(self, text: str) -> Split:
        """The calls begin at the first place a call may begin whose JSON holds one: text
        before them may hold brackets (``See [1]: {"name": ...}``). A JSON value that is no
        call is passed over whole (an object inside it is not looked at), and at most
        ``_MAX_STARTS`` places are tried, so that a text full of brackets costs little."""
        start = _first_start(text)
        for _ in range(_MAX_STARTS):
            if start == len(text):
                break
            calls, passed = _calls_from(text, start)
            if calls:
                return Split(text[:start].rstrip(), calls)
            start = _first_start(text, passed)
        return Split(text, [])


def _calls_from(text: str, start: int) -> tuple[list[Call], int]:
    """The calls in a row at ``start`` (inside a code fence when one opens there), and where
    the next place a call may begin is looked for when there are none."""
    at = start
    if text.startswith(_FENCE, start):  # the value begins on the fence's next line
        at = text.find("\n", start) + 1 or len(text)
    calls: list[Call] = []
    while True:
        read = read_value(text, at)
        found = None if read is None else calls_in(read[0])
        if read is None or found is None:
            return calls, start + 1 if read is None else read[1]
        calls += found
        at = _next(text, read[1])


def _first_start(text: str, at: int = 0) -> int:
    """Where a call may begin from ``at``: the first ``{``, ``[`` or code fence that may open
    one, else the end. ``{`` must be followed by a quote (a key), ``[`` by ``{`` and a fence
    by three backticks, or by the end of the text so far, so that braces, brackets and
    inline code in prose (``a {set}``, ``[1]``, ```ls```) are not held back in a stream."""
    while True:
        found = min((found for char in _STARTS if (found := text.find(char, at)) >= 0), default=len(text))
        if found == len(text) or _may_open(text, found):
            return found
        at = found + 1


def _may_open(text: str, at: int) -> bool:
    """Whether a call (or its fence) may begin at ``at`` (a ``{``, ``[`` or backtick)."""
    if text[at] == "`":
        return _FENCE.startswith(text[at : at + 3])
    follows = text[at + 1 :].lstrip()[:1]
    return not follows or follows == ('"' if text[at] == "{" else "{")


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
