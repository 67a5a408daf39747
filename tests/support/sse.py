"""Server-sent events: the one reader of a stream's body, and the text its chunks carry."""

from __future__ import annotations

import json
from typing import Any

DONE_EVENT = "data: [DONE]"


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON objects of a whole SSE body, in order, ``[DONE]`` left out.

    Fails unless every event is one ``data:`` line of a JSON object and ``[DONE]`` comes last
    (and only there), so a stream cut short or ended twice fails the test that reads it.
    """
    text = raw.decode()
    assert text.endswith("\n\n"), f"the body ends mid-event: ...{text[-200:]!r}"
    blocks = text[: -len("\n\n")].split("\n\n")
    assert blocks[-1] == DONE_EVENT, f"[DONE] is not the last event: ...{text[-200:]!r}"
    events = []
    for block in blocks[:-1]:
        assert block.startswith("data: ") and "\n" not in block, f"not one data line: {block!r}"
        data = json.loads(block.removeprefix("data: "))  # a [DONE] before the end fails here
        assert isinstance(data, dict), f"an event that is not an object: {block!r}"
        events.append(data)
    return events


async def read_events(resp: Any) -> list[dict[str, Any]]:
    """``sse_events`` of a response's whole body (aiohttp's client or test client)."""
    return sse_events(await resp.read())


def text_of(chunk: dict[str, Any]) -> str:
    """The generated text a chat or completion chunk carries ("" for role, usage and finish)."""
    if not chunk.get("choices"):
        return ""
    (choice,) = chunk["choices"]
    if "delta" in choice:
        return choice["delta"].get("content") or ""
    return choice.get("text") or ""


def with_text(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunks that carry generated text: what a loop over a stream's chunks must first
    check there are, or it passes on a stream that carries none."""
    return [chunk for chunk in chunks if text_of(chunk)]


def streamed_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    """Choice ``index``'s whole text, joined from its chunks."""
    return "".join(text_of(c) for c in chunks if c.get("choices") and c["choices"][0]["index"] == index)
