"""A chat's tool history (assistant calls, tool results) rewritten as the turns a template
renders, in a format's shape: an assistant turn's calls after its text, consecutive results
as one turn of the format's result role. Legacy ``function_call``/``function`` messages are
read as one call and its result."""

from __future__ import annotations

from typing import Any, Iterator

from ..jsonvalue import parse
from ..protocol import ChatMessage, ContentPart
from .base import Format, Result
from .calls import Call


def rewritten(messages: list[ChatMessage], form: Format) -> list[ChatMessage]:
    """``messages`` with every call and result written in ``form``'s shape."""
    out: list[ChatMessage] = []
    names: dict[str, str] = {}  # call id -> function name, for the results
    results: list[Result] = []
    for message in messages:
        role = message["role"]
        if role in ("tool", "function"):
            results.append(_result(message, names))
            continue
        if results:
            out.append({"role": form.result_role, "content": form.results_text(results)})
            results = []
        calls = list(_calls(message))
        if not calls:
            out.append(message)
            continue
        names.update((id_, call.name) for id_, call in calls)
        text = _text(message.get("content"))
        out.append({"role": "assistant", "content": f"{text}\n{form.calls_text(calls)}" if text
                    else form.calls_text(calls)})
    if results:
        out.append({"role": form.result_role, "content": form.results_text(results)})
    return out


def _calls(message: ChatMessage) -> Iterator[tuple[str, Call]]:
    """An assistant message's ``(id, call)`` pairs; a legacy call's id is its function's name."""
    for call in message.get("tool_calls") or ():
        yield call["id"], Call(call["function"]["name"], _arguments(call["function"]["arguments"]))
    legacy = message.get("function_call")
    if legacy:
        yield legacy["name"], Call(legacy["name"], _arguments(legacy["arguments"]))


def _arguments(text: str) -> Any:
    """A past call's arguments string as the object it holds (the string itself if none)."""
    parsed = parse(text)
    return text if parsed.error is not None else parsed.value


def _result(message: ChatMessage, names: dict[str, str]) -> Result:
    """A ``tool`` message (by ``tool_call_id``) or legacy ``function`` message (by ``name``)."""
    content = _text(message.get("content"))
    if message["role"] == "function":
        name = message.get("name", "")
        return Result(names.get(name, name), name, content)
    call_id = message.get("tool_call_id", "")
    return Result(call_id, names.get(call_id, ""), content)


def _text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if part["type"] == "text")
    return content or ""
