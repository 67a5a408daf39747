"""The FastChat controller and model workers, behind one pooled session per process.

Three parts, each with its own config section: the ``client`` (transport: FastChat's routes,
one request helper, errors mapped), the ``catalog`` (model lists, the outage rule, worker
facts) and the ``balancer`` (which worker takes a request). A worker that fails is forgotten
by both the catalog and the balancer.
"""

from __future__ import annotations

import time

import aiohttp

from ..config import Config
from .balancer import Balancer
from .cache import Clock
from .catalog import Catalog, WorkerFacts
from .client import Frame, UpstreamClient, create_session

__all__ = ["Upstream", "WorkerFacts", "Frame", "create_session"]


class Upstream:
    """The client, the catalog and the balancer of one process, wired together."""

    def __init__(self, session: aiohttp.ClientSession, config: Config, clock: Clock = time.monotonic) -> None:
        self.client = UpstreamClient(session, config.upstream, config.controller.address, self.forget)
        self.catalog = Catalog(self.client, config.controller,
                               facts_ttl=config.upstream.worker_facts_ttl, clock=clock)
        self.balancer = Balancer(self.client.get_worker_address, config.controller, clock=clock)
        self.skip_token_count = config.upstream.skip_token_count

    def forget(self, worker: str) -> None:
        """Drop what we know of a worker that failed: no request is routed to it until the
        controller names it again, and its facts are asked afresh."""
        self.balancer.drop(worker)
        self.catalog.forget(worker)

    async def close(self) -> None:
        """Stop background work (refreshes) before the session closes."""
        self.catalog.close()
        await self.balancer.close()
