"""Fast JSON in and out: orjson for every body the gateway reads or writes."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; non-ASCII is kept raw as FastChat's streams do."""
    return orjson.dumps(obj)


def json_response(obj: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response without aiohttp's stdlib-json round trip."""
    return web.Response(body=orjson.dumps(obj), status=status, headers=headers,
                        content_type="application/json")
