"""Request bodies for the stand-in (``devstack.standin.StandIn`` serves ``MODEL``)."""

from __future__ import annotations

import json
from typing import Any

MODEL = "fake-model"
MESSAGES = [{"role": "user", "content": "Hi"}]
CHAT = {"model": MODEL, "messages": MESSAGES}
CHAT_BYTES = json.dumps(CHAT).encode()
COMPLETION = {"model": MODEL, "prompt": "Once upon a time"}
EMBEDDING = {"model": MODEL, "input": "Hello world"}


def nested_schema(depth: int) -> dict[str, Any]:
    """A JSON Schema of objects ``depth`` levels deep (``jsonschema``'s ``check_schema``
    recurses past Python's limit at about 100)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema
