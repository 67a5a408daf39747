"""The application factory: ``create_app(config)``, and ``app_factory`` for gunicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from typing import Any, AsyncIterator

from aiohttp import web, web_response

from . import accesslog, bodies, errors
from .config import Config, load_config
from .keys import KeyStore, reload_on_sighup
from .limits import Limiter, add_rate_headers, close_storage, storage_of
from .logfilter import setup_malformed_request_log
from .metrics import metrics_middleware
from .openapi import build_on_startup
from .middlewares import add_ignored_header, add_request_id_header, auth_middleware, error_middleware, request_id_middleware
from .routes import setup_routes
from .shutdown import Draining, drain_on_shutdown
from .typedefs import body_budget_key, config_key, draining_key, keys_key, limiter_key, upstream_key
from .upstream import Upstream, create_session

CONFIG_ENV = "FASTCHAT_API_CONFIG"

log = logging.getLogger(__name__)


async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    """One pooled ``ClientSession`` for the whole process, closed on shutdown."""
    config = app[config_key]
    async with create_session(config.upstream) as session:
        upstream = app[upstream_key] = Upstream(session, config)
        yield
        await upstream.close()


async def check_controller(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: ask the controller for its models as the server starts, without holding
    the start-up back, so that one that cannot be reached is said at once (one WARNING line)
    rather than when the first request fails. The server starts all the same: ``/health``
    answers, ``/v1`` requests get 503 and ``/ready`` says why until the controller answers."""
    task = asyncio.create_task(_warn_unless_controller_answers(app[upstream_key]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _warn_unless_controller_answers(upstream: Upstream) -> None:
    try:
        await upstream.catalog.controller_models()
    except errors.APIError as exc:  # str(): the text for logs, the controller's address included
        log.warning("At start-up: %s; requests get 503 until it answers", exc)


def create_app(config: Config) -> web.Application:
    """A ready application: middlewares, routes with CORS, and the upstream session."""
    app = web.Application(
        client_max_size=config.server.client_max_size,
        middlewares=[metrics_middleware, request_id_middleware, error_middleware, auth_middleware],
    )
    app[config_key] = config
    app[keys_key] = KeyStore(config.auth)
    app[limiter_key] = Limiter(config.limits, storage_of(config.limits))
    app[draining_key] = Draining()
    app[body_budget_key] = bodies.BodyBudget(config.server.max_body_memory)
    app.on_shutdown.append(drain_on_shutdown)
    app.cleanup_ctx.append(upstream_ctx)
    app.cleanup_ctx.append(check_controller)
    app.cleanup_ctx.append(reload_on_sighup)
    app.on_response_prepare.append(add_request_id_header)
    app.on_response_prepare.append(add_ignored_header)
    app.on_response_prepare.append(add_rate_headers)
    app.on_cleanup.append(close_storage)
    app.on_response_prepare.append(bodies.close_unless_read)
    app.on_startup.append(build_on_startup)
    setup_routes(app, config.cors)
    return app


async def freeze_heap(app: web.Application) -> None:
    """``on_startup`` of a serving process, last: what start-up made (modules, schemas, the
    OpenAPI document: about 60,000 objects) moves out of the garbage collector's reach, so that
    its full collections no longer walk it. Under chat load they took up to 30 ms (32
    concurrent) and 50 ms (256), each a stall of every request in flight; frozen, 1 and 7 ms,
    and the p99 at 32 concurrent fell from 3.5 to 1.5 times the p50 (docs/benchmarks-ab.rst).
    Under gunicorn it also keeps those pages shared with the parent after the fork (Python's
    ``gc.freeze`` documentation)."""
    gc.collect()
    gc.freeze()


def serving_app(config: Config) -> web.Application:
    """:func:`create_app` for a process that serves it (``python -m fastchat_api``, gunicorn),
    which freezes its start-up heap (:func:`freeze_heap`); the tests' apps do not."""
    app = create_app(config)
    app.on_startup.append(freeze_heap)
    return app


def new_event_loop(config: Config) -> asyncio.AbstractEventLoop:
    """uvloop's loop when configured and installed (a tenth to a quarter more requests per
    second on the same core), else asyncio's."""
    if config.server.uvloop:
        try:
            import uvloop
        except ImportError:
            logging.getLogger(__name__).warning("server.uvloop is on but uvloop is not installed")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def setup_logging(config: Config) -> None:
    """Log lines as FastChat's: time, level, logger, message; access lines bare beside them;
    malformed requests as one rate-limited WARNING line each (``logfilter``)."""
    logging.basicConfig(
        level=config.logging.level, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s"
    )
    accesslog.setup_access_log()
    setup_malformed_request_log()


def set_server_header(config: Config) -> None:
    """The ``Server`` header of every answer this process writes: ``server.server_header``
    instead of aiohttp's, which names the Python and aiohttp versions.

    aiohttp adds its default to each response that lacks the header, from a module global read
    as each response is written; setting that global (not a response hook) also reaches the
    answers aiohttp's HTTP parser gives to requests it refuses, which no application sees.
    """
    # setattr: a name aiohttp does not export (mypy), though it reads it for every response.
    setattr(web_response, "SERVER_SOFTWARE", config.server.server_header)


def setup_process(config: Config) -> None:
    """What both ways of serving (``python -m fastchat_api``, gunicorn) set once per process."""
    setup_logging(config)
    set_server_header(config)


def runner_options(config: Config) -> dict[str, Any]:
    """Server settings shared by ``python -m fastchat_api`` and gunicorn.

    Handlers are cancelled when their client disconnects, so that the upstream request is
    closed and the worker stops generating for nobody. aiohttp's HTTP parser leaves bodies as
    sent: ``bodies`` inflates them, bounded and off the event loop, once the key is checked.
    """
    return {
        "handler_cancellation": True,
        "auto_decompress": False,
        "shutdown_timeout": config.server.shutdown_timeout,
        "keepalive_timeout": config.server.keepalive_timeout,
        **accesslog.runner_options(config.logging.access_format),
    }


async def app_factory() -> web.AppRunner:
    """For ``gunicorn fastchat_api.app:app_factory``: the config path comes from the environment.

    Returning a runner (not an app) is how aiohttp's gunicorn worker lets us keep handler
    cancellation and our own timeouts; gunicorn's bind, workers and graceful timeout still apply.
    """
    config = load_config(os.environ.get(CONFIG_ENV) or None)
    setup_process(config)
    return web.AppRunner(serving_app(config), **runner_options(config))
