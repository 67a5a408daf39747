"""Request ids, error mapping and API keys, in that order from the outside in, all inside the
metrics middleware (which counts each answer with the status it finally got).

The error middleware wraps the key check and every handler, so that nothing, not even an auth
failure or a router 404, reaches a client as a bare 500 or an HTML page. Once a stream has
started, an error can no longer change the status: it goes out as an in-band
``data: {"error": ...}`` event instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from . import errors
from .ids import new_id
from .jsonutil import json_response
from .shutdown import FAREWELL_TIMEOUT
from .streaming import DONE, event
from .record import names_text, record_key, record_of
from .typedefs import config_key, draining_key, keys_key

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-Id"
IGNORED_HEADER = "X-Ignored-Params"  # the body's fields accepted without effect (schemas)
_MAX_REQUEST_ID = 200


def _request_id(request: web.Request) -> str:
    """The client's id when it sent a sane one, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if 0 < len(given) <= _MAX_REQUEST_ID and given.isprintable():
        return given
    return new_id("req-")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id; ``add_request_id_header`` puts it on the response."""
    record_of(request).request_id = _request_id(request)
    return await handler(request)


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: runs for streams and error pages alike."""
    record = request.get(record_key)
    request_id = record.request_id if record is not None else None
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id


async def add_ignored_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: name the body's ignored fields, comma-separated, on
    whatever answer the request gets (a stream, an error)."""
    record = request.get(record_key)
    if record is not None and record.ignored:
        response.headers[IGNORED_HEADER] = names_text(record.ignored)


def _http_error(exc: web.HTTPException) -> errors.APIError:
    """aiohttp's own errors (404, 405, 413) in the gateway's error format."""
    status = exc.status
    if status == 404:
        return errors.APIError(
            "Unknown route. See the README for the routes this server has.",
            status=404,
            code="unknown_url",
        )
    if status == 405:
        return errors.APIError(exc.text or "Method not allowed", status=405, code="method_not_allowed",
                               headers={"Allow": exc.headers.get("Allow", "")})
    if status == 413:
        return errors.APIError(exc.text or "The request body is too large", status=413,
                               code="request_too_large")
    return errors.APIError(exc.reason, status=status, code=None)


async def _in_band(
    stream: web.StreamResponse, error: errors.APIError, expose_address: bool = False
) -> web.StreamResponse:
    """End a started stream with an error event the ``openai`` client raises, then [DONE]."""
    try:
        await stream.write(event(error.event(expose_address)) + DONE)
    except ConnectionError:
        pass
    return stream


def _error_response(error: errors.APIError, expose_address: bool = False) -> web.Response:
    return json_response(error.body(expose_address), status=error.status, headers=error.headers)


def _log_upstream(request: web.Request, error: errors.APIError) -> None:
    """An error naming an upstream address or carrying a detail the client does not get (a
    worker's own message, an exception's text) is logged with the request id, at WARNING."""
    if error.address or error.detail:
        log.warning("Request %s (%s %s) answered %d: %s", record_of(request).request_id,
                    request.method, request.path, error.status, error)


async def _farewell(request: web.Request) -> None:
    """A request cut short by the shutdown still gets a whole answer: its stream ends with an
    error event and [DONE], or, before the stream began, it gets a 503 with Retry-After."""
    error = errors.shutting_down()
    stream = record_of(request).stream
    try:
        async with asyncio.timeout(FAREWELL_TIMEOUT):
            if stream is not None and stream.prepared:
                await _in_band(stream, error)
                await stream.write_eof()
            else:
                response = _error_response(error)
                await response.prepare(request)
                await response.write_eof()
    except (ConnectionError, TimeoutError):
        pass  # the client is gone or reads nothing: the connection closes anyway


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes an OpenAI-shaped JSON error, or an in-band event mid-stream.
    Upstream addresses reach the client only with ``upstream.expose_addresses``; they and the
    details clients never get are logged with the request id.

    It also tracks the handler for the shutdown (see ``shutdown``), and when the shutdown
    cancels it, answers the client before the cancellation goes on.
    """
    draining = request.app[draining_key]
    try:
        with draining.track():
            response = await handler(request)
    except asyncio.CancelledError:
        if draining.started:
            await _farewell(request)
        raise
    except errors.APIError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _http_error(exc)
    except ConnectionError:
        # The client went away mid-response: there is nobody left to tell.
        return record_of(request).stream or web.Response(status=499, reason="Client Closed Request")
    except Exception:
        log.exception("Unhandled error in %s %s", request.method, request.path)
        error = errors.internal()
    else:
        return response
    _log_upstream(request, error)
    expose = request.app[config_key].upstream.expose_addresses
    stream = record_of(request).stream
    if stream is not None and stream.prepared:
        return await _in_band(stream, error, expose)
    return _error_response(error, expose)


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer-key check on the API routes, against the app's key store when it is on; a key
    past its ``expires`` date is a 401 saying so.

    CORS preflights pass, since browsers never send credentials on them. Operations routes
    (/health, /ready, /metrics, /openapi.json, /docs) are outside the protected prefixes.
    """
    keys = request.app[keys_key]
    if not keys.enabled or request.method == "OPTIONS" or not request.path.startswith(keys.prefixes):
        return await handler(request)
    token = bearer_token(request)
    if token is None:
        raise errors.APIError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            status=401, code="invalid_api_key", fastchat_code=errors.ErrorCode.INVALID_AUTH_KEY,
        )
    key = keys.identify(token)
    if key is None:
        raise errors.APIError(
            "Incorrect API key provided.",
            status=401, code="invalid_api_key", fastchat_code=errors.ErrorCode.INCORRECT_AUTH_KEY,
        )
    if key.expired():
        raise errors.APIError(
            f"This API key expired on {key.expires}.",
            status=401, code="invalid_api_key", fastchat_code=errors.ErrorCode.INCORRECT_AUTH_KEY,
        )
    record_of(request).key = key
    return await handler(request)
