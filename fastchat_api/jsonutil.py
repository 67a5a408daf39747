"""Fast JSON in and out: orjson for every body the gateway reads or writes."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; non-ASCII is kept raw as FastChat's streams do.

    Text holding a lone surrogate, which orjson refuses, is written with every non-ASCII
    character escaped (``\\udcff``) instead: that is how bytes a client sent that are not UTF-8
    reach us from aiohttp (``keys.raw_bytes``), e.g. in a path read by aiohttp's pure-Python
    parser, and an error message quoting them must still go out. Other objects orjson cannot
    write still raise ``TypeError``.
    """
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response without aiohttp's stdlib-json round trip."""
    return web.Response(body=dumps(obj), status=status, headers=headers,
                        content_type="application/json")
