"""Helpers shared by the test modules, one module a concern, all importable from here: test
modules import helpers from this package, never from one another.

- :mod:`.bodies`: request bodies for the stand-in, and a schema nested deep.
- :mod:`.sse`: the one reader of server-sent events, and the text chunks carry.
- :mod:`.generations`: generations that fail on cue, in place of the worker client's.
- :mod:`.waiting`: a clock moved by hand, and the one wait for a condition (``until``).
- :mod:`.metrics`: Prometheus scrapes by name and labels.
- :mod:`.rawhttp`: the one raw-socket HTTP client.
- :mod:`.processes`: the gateway as a real process, on devstack's supervisor.
- :mod:`.openai_spec`: response bodies validated against OpenAI's published schemas.
- :mod:`.templates`: conversation templates as workers send them.

A package rather than one module: together they are some 600 lines of unrelated concerns.
"""

from .bodies import CHAT, CHAT_BYTES, COMPLETION, EMBEDDING, MESSAGES, MODEL, nested_schema
from .generations import Generations
from .metrics import delta, samples, scrape, value
from .processes import (STANDIN_MODEL, exited, gateway_process, log_lines, matching, run_cli,
                        standin_requests, start_gateway, wait_for_line)
from .rawhttp import MALFORMED, RawAnswer, connect, exchange, request
from .sse import DONE_EVENT, read_events, sse_events, streamed_text, text_of, with_text
from .templates import LLAMA3_CONV, fastchat_conv
from .waiting import HANG_GUARD, FakeClock, until

__all__ = [
    "CHAT", "CHAT_BYTES", "COMPLETION", "DONE_EVENT", "EMBEDDING", "HANG_GUARD", "MALFORMED",
    "LLAMA3_CONV", "MESSAGES", "MODEL", "STANDIN_MODEL", "FakeClock", "Generations", "RawAnswer", "connect", "delta", "exchange",
    "exited", "fastchat_conv", "nested_schema", "gateway_process", "log_lines", "matching", "read_events", "request", "run_cli", "samples",
    "scrape", "sse_events", "standin_requests", "start_gateway", "streamed_text", "text_of", "until", "value",
    "wait_for_line", "with_text",
]
