"""One record per request of what it did, filled in as it goes and read at its end.

Middlewares, pipelines, metrics and the access log all need the same few facts about a request
(its id, whose key, which model, the tokens, when its first token left); they share this one
typed record under ``record_key`` instead of loose keys on the request.
"""

from __future__ import annotations

import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence, TypedDict
from urllib.parse import quote

from aiohttp import web

if TYPE_CHECKING:
    from .keys import Key


class Usage(TypedDict, total=False):
    """OpenAI's ``usage`` object (token counts)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(slots=True)
class RequestRecord:
    """What one request did; None where it does not apply (yet)."""

    started: float = field(default_factory=time.perf_counter)  # perf_counter seconds
    request_id: str | None = None
    key: Key | None = None  # the key the request came with (``keys.Key``), when keys are on
    model: str | None = None
    user: str | None = None  # the body's ``user``: the client's end user
    ignored: tuple[str, ...] = ()  # body fields accepted without effect, in body order
    usage: Usage | None = None
    first_token: float | None = None  # seconds from ``started`` to a stream's first token
    stream: web.StreamResponse | None = None  # the SSE response once it is prepared
    rate_headers: dict[str, str] | None = None  # a limited key's x-ratelimit-* (``limits``)

    @property
    def key_id(self) -> str | None:
        """The key's identity in logs and metrics (its name, or a hash prefix), never the key."""
        return None if self.key is None else self.key.id

    @property
    def streaming(self) -> bool:
        """Whether the 200 of a stream went out: errors can then only be sent in-band."""
        return self.stream is not None and self.stream.prepared


# Field names come from clients: in a header or a log line they are written as printable ASCII
# ("%" escapes for anything else, commas included) and at most this many characters are kept.
MAX_NAMES_TEXT = 512
_PLAIN = "".join(char for char in string.printable if char not in ",% \t\n\r\x0b\x0c")


def names_text(names: Sequence[str]) -> str:
    """``a, b, c``: client-given names, escaped and bounded (``..., +N more`` past the limit)."""
    shown: list[str] = []
    size = 0
    for name in names:
        escaped = quote(name, safe=_PLAIN)
        size += len(escaped) + 2
        if size > MAX_NAMES_TEXT and shown:
            return ", ".join(shown) + f", +{len(names) - len(shown)} more"
        shown.append(escaped[:MAX_NAMES_TEXT])
    return ", ".join(shown)


record_key = web.RequestKey("record_key", RequestRecord)


def record_of(request: web.BaseRequest) -> RequestRecord:
    """The request's record, made on first use (the outermost middleware makes it)."""
    record = request.get(record_key)
    if record is None:
        record = request[record_key] = RequestRecord()
    return record
