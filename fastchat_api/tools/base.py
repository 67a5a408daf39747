"""What every tool format does, and the parts most share.

A format (``tools.hermes``, ``tools.llama3``, ``tools.mistral``, ``tools.json``) says how the
function definitions, past calls and tool results are written into the prompt in the shape a
model family was trained on, which opening makes the model start a call (``required`` or a named
function), where a call may begin in a growing text (so that streamed content never shows the
start of one) and how a finished text splits into the content before the calls and the calls.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Sequence

from ..conversation import Prompt, Template
from ..protocol import ChatMessage, Function
from .calls import Call


class Result(NamedTuple):
    """A tool's result, as the client sent it: the call's id, the function's name (when the
    history says it), the text."""

    call_id: str
    name: str
    content: str


class Split(NamedTuple):
    """A finished text: the content written before the calls, and the calls (none when the
    text holds no well-formed call)."""

    content: str
    calls: list[Call]


def definition(function: Function) -> dict[str, Any]:
    """A function as OpenAI's ``tools`` item (what most templates print)."""
    body: dict[str, Any] = {"name": function.name}
    if function.description:
        body["description"] = function.description
    body["parameters"] = function.parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": body}


def dumps(value: Any) -> str:
    """JSON as models read it in prompts: ``", "`` and ``": "`` separators, UTF-8 kept."""
    return json.dumps(value, ensure_ascii=False)


def possible_start(text: str, marker: str) -> int:
    """Where ``marker`` may begin in ``text``: where it is, else where a prefix of it ends the
    text, else the text's end."""
    found = text.find(marker)
    if found >= 0:
        return found
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return len(text) - size
    return len(text)


class Format:
    """A tool format; subclasses set ``name``, ``instruction`` (with ``{tools}``), ``lead`` and
    ``arguments_key`` (which make the ``opening``) and the writers, and may override ``render``
    where definitions go elsewhere than the system turn."""

    name = ""
    instruction = "{tools}"
    result_role = "user"  # the role of the turn that carries tool results
    lead = ""  # what a call's JSON object follows: its marker
    arguments_key = "arguments"  # the key of a call's arguments

    def definitions(self, functions: Sequence[Function]) -> str:
        """The functions as the instruction's ``{tools}``: one JSON object per line."""
        return "\n".join(dumps(definition(function)) for function in functions)

    def calls_text(self, calls: Sequence[tuple[str, Call]]) -> str:
        """Past ``(id, call)`` pairs of an assistant turn, as the model would have written them."""
        raise NotImplementedError

    def results_text(self, results: Sequence[Result]) -> str:
        """Consecutive tool results, as the turn of ``result_role`` that carries them."""
        raise NotImplementedError

    def opening(self, name: str | None) -> str:
        """The start of a call, prefilled so that the model writes one: of any function
        (``{"name": "``), or of the function ``name``, up to its arguments."""
        if name is None:
            return f'{self.lead}{{"name": "'
        return f'{self.lead}{{"name": {dumps(name)}, "{self.arguments_key}": '

    def hold(self, text: str) -> int:
        """How much of a growing ``text`` is surely content (no call begins in it)."""
        raise NotImplementedError

    def split(self, text: str) -> Split:
        """A finished text: its content and its calls (``calls`` empty when none is well-formed)."""
        raise NotImplementedError

    def call_start(self, text: str) -> int | None:
        """Where the JSON of the first call begins in ``text``, once it can be told."""
        raise NotImplementedError

    def after_call(self, text: str, end: int) -> tuple[str, int]:
        """What follows a call whose JSON ends at ``end``: ``("more", where the next call is
        looked for)``, ``("wait", 0)`` until that can be told, or ``("stop", where the calls
        end)``. By default one JSON value holds every call."""
        return "stop", end

    def render(self, template: Template, messages: list[ChatMessage], functions: Sequence[Function],
               instruction: str, prefill: str) -> Prompt:
        """The prompt: the instruction (holding the ``functions``' definitions) in the system
        turn, the history already in the format's shape (``tools.history``)."""
        return template.render(messages, instruction=instruction, prefill=prefill,
                               extra_roles=(self.result_role,))


class Marked(Format):
    """A format whose calls follow a marker of their own (``marker``): a call may begin only
    where the marker does."""

    marker = ""

    def hold(self, text: str) -> int:
        return len(text[: possible_start(text, self.marker)].rstrip())

    def call_start(self, text: str) -> int | None:
        found = text.find(self.marker)
        return None if found < 0 else found + len(self.marker)
