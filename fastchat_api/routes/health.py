"""``GET /health`` and ``GET /ready``, for load balancers, orchestrators and monitors.

``/health`` says the process answers, and calls nothing upstream: a slow controller must not
get healthy gateways restarted. ``/ready`` says whether requests can be served now: the
controller answered within the last ``catalog.READY_WINDOW`` seconds and listed at least one
model; otherwise 503 with the reason, in the gateway's error format, under the code the ``/v1``
routes give the same failure. Neither needs an API key.
"""

from __future__ import annotations

from aiohttp import web

from .. import errors
from ..jsonutil import json_response
from ..response_schemas import HealthSchema, ReadySchema, returns
from ..typedefs import upstream_key

routes = web.RouteTableDef()


@routes.get("/health")
@returns(HealthSchema)
async def health(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers."""
    return json_response({"status": "ok"})


@routes.get("/ready")
@returns(ReadySchema)
async def ready(request: web.Request) -> web.Response:
    """The controller is reachable and serves at least one model; 503 with the reason if not."""
    try:
        models = await request.app[upstream_key].catalog.controller_models()
    except errors.APIError as exc:
        raise errors.not_ready(exc) from None
    if not models:
        raise errors.upstream_unavailable(
            "Not ready: the controller lists no model (no worker has registered)"
        )
    return json_response({"status": "ready", "models": models})
