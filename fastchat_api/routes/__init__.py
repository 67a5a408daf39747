"""The route tables of every module, each route also with a trailing slash, and CORS over all
of them."""

from __future__ import annotations

import aiohttp_cors
from aiohttp import hdrs, web

from ..bodies import defer_continue
from ..config import CorsConfig
from ..middlewares import IGNORED_HEADER, REQUEST_ID_HEADER
from ..responses import LOGPROBS_HEADER, TOP_LOGPROBS_HEADER
from . import api_v1, chat, completions, docs, embeddings, health, metrics, models

ROUTE_TABLES = (
    models.routes, chat.routes, completions.routes, embeddings.routes, api_v1.routes, health.routes,
    metrics.routes, docs.routes,
)


def _option(values: tuple[str, ...]) -> str | tuple[str, ...]:
    """aiohttp-cors takes ``"*"`` for 'any' and a tuple otherwise."""
    return "*" if "*" in values else values


def slash_form(path: str) -> bool:
    """Whether a route's path is the trailing-slash form of another (see ``setup_routes``)."""
    return path != "/" and path.endswith("/")


def _served_as(table: web.RouteTableDef) -> list[web.RouteDef]:
    """Each route of ``table`` as it is served, with ``bodies.defer_continue`` as the
    ``Expect`` handler (the tables hold only ``RouteDef``s): a path with a variable after its
    trailing-slash form, which a greedy ``{model:.+}`` would otherwise take; a fixed path
    before it, so that its requests (all of the API's but one) are matched by the first
    resource aiohttp's router tries (both forms share one entry of its index), not the second."""
    served = []
    for route in table:
        assert isinstance(route, web.RouteDef)
        kwargs = {"expect_handler": defer_continue, **route.kwargs}
        forms = [route.path]
        if not slash_form(route.path):
            forms.insert(0 if "{" in route.path else 1, route.path + "/")
        served += [web.RouteDef(route.method, path, route.handler, kwargs) for path in forms]
    return served


# What a CORS answer is made of: aiohttp-cors echoes the Origin and, on preflights, the method
# and headers asked for.
_CORS_REQUEST_HEADERS = (hdrs.ORIGIN, hdrs.ACCESS_CONTROL_REQUEST_METHOD,
                         hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
_CORS_RESPONSE_HEADERS = (
    hdrs.ACCESS_CONTROL_ALLOW_ORIGIN, hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS,
    hdrs.ACCESS_CONTROL_EXPOSE_HEADERS, hdrs.ACCESS_CONTROL_ALLOW_METHODS,
    hdrs.ACCESS_CONTROL_ALLOW_HEADERS, hdrs.ACCESS_CONTROL_MAX_AGE,
)
_PREFLIGHT_VARY = ", ".join(_CORS_REQUEST_HEADERS)


async def vary_by_origin(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``, after aiohttp-cors's: every answer of a route CORS covers (all
    routes; errors and streams included) depends on the ``Origin``, and a preflight's also on
    the method and headers asked for, so ``Vary`` says so and no cache serves one origin's
    answer to another (Fetch standard, "CORS protocol and HTTP caches").

    A serialized origin, a method and header names are ASCII (RFC 6454, RFC 9110): when a client
    sent other bytes there, the request gets no CORS headers rather than an echo of them.
    """
    if request.match_info.route.resource is None:  # no route matched: aiohttp-cors added nothing
        return
    if not all(request.headers.get(name, "").isascii() for name in _CORS_REQUEST_HEADERS):
        for name in _CORS_RESPONSE_HEADERS:
            response.headers.popall(name, None)
    response.headers.add(hdrs.VARY, _PREFLIGHT_VARY if request.method == hdrs.METH_OPTIONS else hdrs.ORIGIN)


def setup_routes(app: web.Application, cors: CorsConfig) -> None:
    """Add every route, then CORS with FastChat's defaults (any origin, method and header).

    Every route is also served with a trailing slash (``/v1/models/``), by the same handler
    behind the same middlewares (API keys included). FastChat's server (FastAPI) redirects
    those paths with a 307; serving them is the same to clients that follow the redirect and
    also suits those that do not (httpx and curl by default) and browsers, which never follow a
    redirected CORS preflight. The order of the two forms is :func:`_served_as`'s.
    """
    for table in ROUTE_TABLES:
        app.add_routes(_served_as(table))
    options = aiohttp_cors.ResourceOptions(
        allow_credentials=cors.allow_credentials,
        allow_headers=_option(cors.allowed_headers),
        allow_methods=_option(cors.allowed_methods),
        expose_headers=(REQUEST_ID_HEADER, IGNORED_HEADER, LOGPROBS_HEADER, TOP_LOGPROBS_HEADER),
        max_age=600,
    )
    setup = aiohttp_cors.setup(app, defaults={origin: options for origin in cors.allowed_origins})
    for route in list(app.router.routes()):
        setup.add(route)
    if cors.allowed_origins:  # else no answer depends on the Origin
        app.on_response_prepare.append(vary_by_origin)
