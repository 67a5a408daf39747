"""The route tables of every module, and CORS over all of them."""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web

from ..bodies import defer_continue
from ..config import CorsConfig
from . import api_v1, chat, completions, docs, embeddings, health, metrics, models

ROUTE_TABLES = (
    models.routes, chat.routes, completions.routes, embeddings.routes, api_v1.routes, health.routes,
    metrics.routes, docs.routes,
)


def _option(values: tuple[str, ...]) -> str | tuple[str, ...]:
    """aiohttp-cors takes ``"*"`` for 'any' and a tuple otherwise."""
    return "*" if "*" in values else values


def _deferring_continue(route: web.AbstractRouteDef) -> web.AbstractRouteDef:
    """The route with ``bodies.defer_continue`` as its ``Expect`` handler (any other kind of
    definition as it is: the tables hold none)."""
    if not isinstance(route, web.RouteDef):
        return route
    return web.RouteDef(route.method, route.path, route.handler,
                        {"expect_handler": defer_continue, **route.kwargs})


def setup_routes(app: web.Application, cors: CorsConfig) -> None:
    """Add every route, then CORS with FastChat's defaults (any origin, method and header)."""
    for table in ROUTE_TABLES:
        app.add_routes(map(_deferring_continue, table))
    options = aiohttp_cors.ResourceOptions(
        allow_credentials=cors.allow_credentials,
        allow_headers=_option(cors.allowed_headers),
        allow_methods=_option(cors.allowed_methods),
        expose_headers=("X-Request-Id",),
        max_age=600,
    )
    setup = aiohttp_cors.setup(app, defaults={origin: options for origin in cors.allowed_origins})
    for route in list(app.router.routes()):
        setup.add(route)
