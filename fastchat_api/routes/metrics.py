"""``GET /metrics``: Prometheus' text format, behind its own bearer token when one is set.

The API keys do not open it (a client of the API has no business reading everyone's traffic),
and the token does not open the API.
"""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .. import errors, metrics
from ..keys import raw_bytes
from ..middlewares import bearer_token
from ..response_schemas import returns
from ..typedefs import config_key

routes = web.RouteTableDef()


def _check_token(request: web.Request) -> None:
    expected = request.app[config_key].metrics.token
    if expected is None:
        return
    given = bearer_token(request) or ""
    if not hmac.compare_digest(raw_bytes(given), raw_bytes(expected)):
        raise errors.APIError(
            "GET /metrics needs the metrics token: 'Authorization: Bearer <metrics.token>'.",
            status=401, code="invalid_metrics_token",
            fastchat_code=errors.ErrorCode.INCORRECT_AUTH_KEY,
        )


@routes.get("/metrics")
@returns(media_type="text/plain")
async def scrape(request: web.Request) -> web.Response:
    """Prometheus metrics of every gateway process.

    Requests, latencies, time to first token, tokens, streams and upstream failures, by route
    and model; under gunicorn, the sum of all its processes.
    """
    _check_token(request)
    body = await asyncio.to_thread(metrics.exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
