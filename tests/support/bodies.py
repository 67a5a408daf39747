"""Request bodies for the stand-in (``devstack.standin.StandIn`` serves ``MODEL``)."""

from __future__ import annotations

import json

MODEL = "fake-model"
MESSAGES = [{"role": "user", "content": "Hi"}]
CHAT = {"model": MODEL, "messages": MESSAGES}
CHAT_BYTES = json.dumps(CHAT).encode()
COMPLETION = {"model": MODEL, "prompt": "Once upon a time"}
EMBEDDING = {"model": MODEL, "input": "Hello world"}
