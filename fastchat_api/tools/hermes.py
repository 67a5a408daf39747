"""Hermes' tool format (NousResearch's Hermes 2 Pro, Qwen2 and later, and most chatml-family
fine-tunes): the signatures one JSON object per line inside ``<tools></tools>`` in the system
turn; a call ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``, several in a
row for parallel calls; results ``<tool_response>\\n...\\n</tool_response>`` in a user turn.
"""

from __future__ import annotations

from typing import Sequence

from .base import Marked, Result, Split, dumps
from .calls import Call, as_call, read_value

OPEN, CLOSE = "<tool_call>", "</tool_call>"


class Hermes(Marked):
    name = "hermes"
    marker, lead = OPEN, f"{OPEN}\n"
    instruction = (
        "You can call functions. Their signatures, one JSON object per line, are inside "
        "<tools></tools>:\n<tools>\n{tools}\n</tools>\n"
        "To call a function, write <tool_call>, then on the next line "
        '{"name": <function name>, "arguments": <the arguments as a JSON object>}, then '
        "</tool_call> on a line of its own; write one such block per call. Otherwise, answer "
        "in plain text."
    )

    def calls_text(self, calls: Sequence[tuple[str, Call]]) -> str:
        return "\n".join(f"{OPEN}\n{dumps({'name': call.name, 'arguments': call.arguments})}\n{CLOSE}"
                         for _, call in calls)

    def results_text(self, results: Sequence[Result]) -> str:
        return "\n".join(f"<tool_response>\n{result.content}\n</tool_response>" for result in results)

    def after_call(self, text: str, end: int) -> tuple[str, int]:
        """Another ``<tool_call>`` may follow (after ``</tool_call>`` and whitespace)."""
        at = _past(text, end, CLOSE)
        rest = text[at:]
        if rest.startswith(OPEN):
            return "more", at
        if OPEN.startswith(rest) or CLOSE.startswith(text[end:].strip()):
            return "wait", 0
        return "stop", at

    def split(self, text: str) -> Split:
        """Every ``<tool_call>`` block, text between them passed over (a model may say what it
        calls next); none when any block is not a call (one cut short by ``max_tokens``)."""
        start = text.find(OPEN)
        calls: list[Call] = []
        at = start
        while at >= 0:
            read = read_value(text, at + len(OPEN))
            call = None if read is None else as_call(read[0])
            if read is None or call is None:
                return Split(text, [])
            calls.append(call)
            at = text.find(OPEN, read[1])
        return Split(text[:start].rstrip(), calls) if calls else Split(text, [])


def _past(text: str, at: int, tag: str) -> int:
    """Where the next call may begin after a call's JSON: past whitespace and ``tag``."""
    rest = text[at:].lstrip()
    if rest.startswith(tag):
        rest = rest[len(tag):].lstrip()
    return len(text) - len(rest)
