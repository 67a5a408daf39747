"""The retry rule: a worker that fails before anything reached the client is worth one more try
on another worker."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, TypeVar

from aiohttp import web

from .. import errors, metrics
from ..record import record_of

log = logging.getLogger(__name__)

T = TypeVar("T")


async def with_retry(request: web.Request, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` (plan and generate); when a worker fails in a way another may not
    (connection refused or reset, a 5xx: ``APIError.failed_worker``) and no byte of a stream has
    gone out, run it once more. The failed worker is forgotten by then, so the balancer asks
    the controller for another."""
    try:
        return await attempt()
    except errors.APIError as exc:
        if exc.failed_worker is None or record_of(request).streaming:
            raise
        log.warning("Request %s: trying another worker after this failure: %s",
                    record_of(request).request_id, exc)
        metrics.retry(exc.failed_worker)
    return await attempt()
