"""Mistral's tool format (Mistral 7B v0.3, Mixtral 8x22B, Mistral Nemo and their tokenizer's
v3 control tokens), for mistral templates: ``[AVAILABLE_TOOLS] [...][/AVAILABLE_TOOLS]``
before the ``[INST]`` of the user's last message; calls ``[TOOL_CALLS] [{"name": ..., "arguments": {...}}]``;
results ``[TOOL_RESULTS] {"content": ..., "call_id": ...} [/TOOL_RESULTS]`` in the user turn
that follows. Call ids in the prompt are 9 letters and digits, as Mistral's tokenizer requires:
each client id is mapped onto such an id (the same one wherever it appears).
"""

from __future__ import annotations

import hashlib
import string
from typing import Sequence

from ..conversation import Prompt, Template
from ..protocol import ChatMessage, Function
from .base import Marked, Result, Split, definition, dumps
from .calls import Call, read_value
from .jsonformat import calls_in

CALLS = "[TOOL_CALLS]"
_INST = "[INST]"
_RESULTS = "[TOOL_RESULTS]"
_ALPHABET = string.ascii_letters + string.digits
_LAST_USER = "\ue001"  # marks the last user turn while the prompt is rendered


def short_id(call_id: str) -> str:
    """The 9-character id a client's call id stands as in the prompt."""
    digest = hashlib.sha256(call_id.encode("utf-8", "surrogatepass")).digest()
    return "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in digest[:9])


class Mistral(Marked):
    name = "mistral"
    marker, lead = CALLS, f"{CALLS} ["
    instruction = ""  # the definitions have a block of their own; an override goes to the system turn

    def calls_text(self, calls: Sequence[tuple[str, Call]]) -> str:
        return CALLS + " " + dumps([{"name": call.name, "arguments": call.arguments, "id": short_id(id_)}
                                    for id_, call in calls])

    def results_text(self, results: Sequence[Result]) -> str:
        return "".join(f"{_RESULTS} {dumps({'content': result.content, 'call_id': short_id(result.call_id)})} "
                       "[/TOOL_RESULTS]" for result in results)

    def split(self, text: str) -> Split:
        start = text.find(CALLS)
        read = None if start < 0 else read_value(text, start + len(CALLS))
        calls = None if read is None else calls_in(read[0])
        return Split(text[:start].rstrip(), calls) if calls else Split(text, [])

    def render(self, template: Template, messages: list[ChatMessage], functions: Sequence[Function],
               instruction: str, prefill: str) -> Prompt:
        """The definitions go right before the ``[INST]`` of the user's last message."""
        if not functions:
            return super().render(template, messages, functions, instruction, prefill)
        marked = _mark_last_user(messages)
        prompt = super().render(template, marked, functions, instruction, prefill)
        mark = prompt.text.find(_LAST_USER)
        if mark < 0:
            mark = 0
        at = max(prompt.text.rfind(_INST, 0, mark), 0)
        block = f"[AVAILABLE_TOOLS] {dumps([definition(f) for f in functions])}[/AVAILABLE_TOOLS]"
        text = prompt.text[:at] + block + prompt.text[at:].replace(_LAST_USER, "", 1)
        return Prompt(text, prompt.images)


def _mark_last_user(messages: list[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with a mark before the text of the last user message (a string one), not
    counting the turns of tool results (written as user turns here; Mistral's tokenizer puts
    the tools before the last message of the user, never before results)."""
    for position in range(len(messages) - 1, -1, -1):
        content = messages[position].get("content")
        if (messages[position]["role"] == "user" and isinstance(content, str)
                and not content.startswith(_RESULTS)):
            marked = {**messages[position], "content": _LAST_USER + content}
            return [*messages[:position], marked, *messages[position + 1:]]  # type: ignore[list-item]
    return messages
