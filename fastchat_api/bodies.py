"""Request bodies, from the socket to a JSON object: read, inflated, decoded.

aiohttp's HTTP parser is told not to inflate bodies (``auto_decompress=False`` in
``app.runner_options``): it would do so on the event loop, for any client and without bound,
before a middleware could look at the key. Here a body is read only once a handler asks for it
(after the key check), and every step is bounded:

* size: at most ``server.client_max_size`` bytes as sent and as inflated (413 at the point it
  crosses; a larger ``Content-Length`` is refused before a byte is read);
* time: ``server.body_read_timeout`` seconds to receive (and inflate) it all (408);
* memory: the bytes of the bodies of all requests being answered, compressed and inflated, at
  most ``server.max_body_memory`` across the process (503 with ``Retry-After``);
* event loop: inflation runs in the default executor, in steps of at most ``INFLATE_SLICE``
  bytes (zlib releases the GIL while it inflates).

``100 Continue`` is sent when the body is first read, so that a request refused before (no key,
a body too large) is answered at once and its body never sent; and an answer that goes out
before its request's body has all arrived closes the connection (RFC 9110, section 10.1.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from typing import Any, AsyncIterator

from aiohttp import HttpVersion11, web

from . import errors
from .jsonutil import JSONDecodeError, loads
from .typedefs import body_budget_key, config_key

_JSON_TYPES = ("application/json", "application/octet-stream", "")
INFLATE_SLICE = 256 * 1024  # bytes in, and bytes out, of one step of inflation off the loop

# zlib's window bits per content coding (RFC 9110, section 8.4.1): gzip's header and trailer;
# deflate as the zlib format (RFC 1950), or raw deflate as some clients send it.
_GZIP, _ZLIB, _RAW_DEFLATE = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS
_INFLATED = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": _ZLIB}
# The other codings of IANA's HTTP Content Coding Registry: compressed bodies that cannot be
# read here (415). A token not registered at all (``Content-Encoding: utf-8`` is a common slip)
# is ignored, as FastChat ignores the header, and the body read as it is.
_UNSUPPORTED = frozenset({"br", "zstd", "compress", "x-compress", "pack200-gzip", "exi",
                          "aes128gcm", "dcb", "dcz"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class BodyBudget:
    """The bytes of request bodies held across the process, against ``server.max_body_memory``.

    Held in the app under ``body_budget_key``; a request takes from it while its body arrives
    and is inflated, and gives everything back when it has been answered.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes, or a 503 with ``Retry-After`` when they do not fit now."""
        if self.held + size > self.limit:
            raise errors.unavailable(
                "The server is receiving too many large request bodies at once; send it again "
                "shortly.", code="server_busy", fastchat_code=errors.ErrorCode.ENGINE_OVERLOADED,
            )
        self.held += size

    def give_back(self, size: int) -> None:
        """Count ``size`` bytes fewer."""
        self.held -= size


class _Share:
    """One request's part of the budget: what it took, all given back at once."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.size = 0

    def take(self, size: int) -> None:
        self.budget.take(size)
        self.size += size

    def give_back(self, size: int) -> None:
        self.budget.give_back(size)
        self.size -= size


@contextlib.asynccontextmanager
async def json_body(request: web.Request) -> AsyncIterator[dict[str, Any]]:
    """The body as a JSON object, or a 4xx (408, 413, 415, 417, 400) or 503 naming what is
    wrong; its bytes count against the process's budget until the block ends."""
    share = _Share(request.app[body_budget_key])
    try:
        yield decode_json(await _read(request, share))
    finally:
        share.give_back(share.size)


async def _read(request: web.Request, share: _Share) -> bytes | bytearray:
    """The body, received and inflated within ``server.body_read_timeout``."""
    _check_content_type(request.content_type)
    coding = _coding(",".join(request.headers.getall("Content-Encoding", ())))
    server = request.app[config_key].server
    try:
        async with _deadline(request, server.body_read_timeout):
            raw = await _receive(request, server.client_max_size, share)
            if coding is None:
                return raw
            inflated = await _inflate(raw, coding, server.client_max_size, share)
    except TimeoutError:
        raise errors.APIError(
            f"The request body did not arrive within {server.body_read_timeout:g} s.",
            status=408, code="request_timeout",
        ) from None
    except web.RequestPayloadError as exc:  # e.g. the connection closed before its end
        raise errors.invalid_request(f"The body cannot be read: {exc}", code="invalid_body") from None
    share.give_back(len(raw))  # the compressed bytes are gone once inflated
    return inflated


def _deadline(request: web.Request, seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
    """The bound on receiving the body; none when it has all arrived (with the headers, as
    small bodies do), since reading it then never waits."""
    return contextlib.nullcontext() if request.content.is_eof() else asyncio.timeout(seconds)


def _check_content_type(ctype: str) -> None:
    if ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise errors.APIError(
            f"Content-Type must be application/json, not {ctype}",
            status=415,
            code="unsupported_media_type",
        )


def _coding(header: str) -> str | None:
    """The one content coding to undo (``gzip``, ``x-gzip``, ``deflate``), None for a body
    as it is, or a 415 naming a coding that cannot be undone here."""
    tokens = (token.strip() for token in header.lower().split(","))
    codings = [token for token in tokens if token in _INFLATED or token in _UNSUPPORTED]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _INFLATED:
        return codings[0]
    raise errors.APIError(
        f"Content-Encoding {header!r} is not supported: send the body as it is, or in gzip or "
        "deflate.",
        status=415, code="unsupported_content_encoding", headers={"Accept-Encoding": "gzip, deflate"},
    )


def _too_large(limit: int) -> errors.APIError:
    return errors.APIError(f"The request body is larger than the {limit} bytes allowed.",
                           status=413, code="request_too_large")


async def _receive(request: web.Request, limit: int, share: _Share) -> bytes | bytearray:
    """The body as sent, at most ``limit`` bytes; counted before it is read when its length
    is declared, so that a refusal comes before the body (and before ``100 Continue``)."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise _too_large(limit)
        share.take(length)
    _send_continue(request)
    if length is not None and request.content.is_eof():  # all here: the bytes aiohttp holds
        return request.content.read_nowait()
    if length is not None:  # one buffer, filled in place: no copy of the whole body
        body = bytearray(length)
        view, filled = memoryview(body), 0
        async for chunk in request.content.iter_any():
            view[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
        return body
    body = bytearray()
    async for chunk in request.content.iter_any():
        if len(body) + len(chunk) > limit:
            raise _too_large(limit)
        share.take(len(chunk))
        body += chunk
    return body


def _send_continue(request: web.Request) -> None:
    """``100 Continue`` for a client that waits for it (HTTP/1.1 ``Expect: 100-continue``);
    another expectation is a 417."""
    expect = request.headers.get("Expect")
    if expect is None or request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise errors.APIError(f"Expect: {expect} cannot be met; only 100-continue can.",
                              status=417, code="expectation_failed")
    if request.transport is not None:
        request.transport.write(_CONTINUE)


async def defer_continue(request: web.Request) -> None:
    """The ``expect_handler`` of every route: aiohttp's default sends ``100 Continue`` before
    any middleware runs; this leaves it to the body reader (``_send_continue``)."""


async def _inflate(data: bytes | bytearray, coding: str, limit: int, share: _Share) -> bytearray:
    """``data`` inflated, at most ``limit`` bytes (413 at the point it crosses), or a 400 when
    it is not in its coding. Each step off the loop takes at most ``INFLATE_SLICE`` bytes in
    and gives at most as many out."""
    wbits = _INFLATED[coding]
    if wbits == _ZLIB and data and data[0] & 0x0F != zlib.DEFLATED:
        wbits = _RAW_DEFLATE
    inflater = zlib.decompressobj(wbits)
    loop = asyncio.get_running_loop()
    out, source, fed = bytearray(), memoryview(data), 0
    pending: bytes | memoryview = b""
    try:
        while not inflater.eof:
            if not pending:
                pending, fed = source[fed:fed + INFLATE_SLICE], fed + INFLATE_SLICE
            room = min(INFLATE_SLICE, limit + 1 - len(out))
            piece = await loop.run_in_executor(None, inflater.decompress, pending, room)
            if len(out) + len(piece) > limit:
                raise _too_large(limit)
            share.take(len(piece))
            out += piece
            pending = inflater.unconsumed_tail
            if not piece and not pending and fed >= len(source):
                raise zlib.error("the body ends before its compressed data does")
    except zlib.error as exc:
        raise _not_in_coding(coding, str(exc)) from None
    if inflater.unused_data or fed < len(source):
        raise _not_in_coding(coding, "bytes follow the end of the compressed data")
    return out


def _not_in_coding(coding: str, reason: str) -> errors.APIError:
    return errors.invalid_request(f"The body is not in its Content-Encoding {coding}: {reason}",
                                  code="invalid_body")


def decode_json(body: bytes | bytearray) -> dict[str, Any]:
    """A JSON object from a body in UTF-8, with or without a byte-order mark, or (as FastChat's
    ``json.loads`` takes them) in UTF-16 or UTF-32, told by a BOM or the pattern of zero
    bytes in the first four (RFC 4627, section 3); a 400 otherwise."""
    encoding = json.detect_encoding(body)
    try:
        if encoding == "utf-8":
            data = loads(body)
        elif encoding == "utf-8-sig":
            data = loads(memoryview(body)[3:])
        else:
            data = loads(str(body, encoding))
    except UnicodeDecodeError as exc:
        raise errors.invalid_request(
            f"The body looks like {encoding.upper()} JSON (from its first bytes) but is not valid "
            f"{encoding.upper()}: {exc.reason} at byte {exc.start}. Send it in UTF-8.",
            code="invalid_json",
        ) from None
    except JSONDecodeError as exc:
        raise errors.invalid_request(f"The body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise errors.invalid_request("The body must be a JSON object", code="invalid_json")
    return data


async def close_unless_read(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: an answer sent before its request's body has all arrived (a
    refusal that did not read it) says ``Connection: close`` and closes, so that the client
    does not send a body nobody reads, nor take the next request's bytes for its end."""
    if not request.content.is_eof():
        response.force_close()
        response.headers["Connection"] = "close"  # the hook runs after aiohttp wrote its own
