"""The worker balancer: which worker takes the next request, from the controller's choices
remembered briefly.

FastChat's server asks the controller for a worker address before every request. Here the
addresses the controller hands out for a model are kept for ``worker_address_ttl`` seconds and
requests go round-robin over them, so the hot path makes no control-plane round trip. While
traffic flows the controller is asked again in the background every ``refresh_interval``:
its dispatch (shortest queue or lottery) keeps deciding which workers take traffic, a worker it
stops naming ages out, and a worker that fails is dropped at once. When the controller cannot
be reached, known workers stay in use for ``outage_grace`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from .. import errors
from ..config import ControllerConfig
from .cache import Clock

log = logging.getLogger(__name__)

Ask = Callable[[str], Awaitable[str]]


@dataclass(slots=True)
class _Model:
    """The workers recently named for one model, and when the controller was last asked."""

    seen: dict[str, float] = field(default_factory=dict)
    turn: int = 0
    asked: float = 0.0
    refreshing: asyncio.Task[None] | None = None


class Balancer:
    """Round-robin over the workers the controller recently named for each model.

    ``ask(model)`` is the controller's own pick (``/get_worker_address``).
    """

    def __init__(self, ask: Ask, config: ControllerConfig, *, clock: Clock = time.monotonic) -> None:
        self._ask = ask
        self._ttl = config.worker_address_ttl
        self._refresh_interval = config.refresh_interval
        self._outage_grace = config.outage_grace
        self._clock = clock
        self._models: dict[str, _Model] = {}
        self._outage_since: float | None = None

    async def pick(self, model: str) -> str:
        """A worker for ``model``; asks the controller only when none is known."""
        entry = self._models.setdefault(model, _Model())
        now = self._clock()
        live = self._live(entry, now)
        if not live:
            return await self._learn_or_fall_back(model, entry)
        if now - entry.asked >= self._refresh_interval and entry.refreshing is None:
            entry.refreshing = asyncio.create_task(self._refresh(model, entry))
        entry.turn += 1
        return live[entry.turn % len(live)]

    def drop(self, worker: str) -> None:
        """Stop routing to a worker that failed, until the controller names it again."""
        for entry in self._models.values():
            entry.seen.pop(worker, None)

    async def close(self) -> None:
        """Cancel background refreshes (on shutdown)."""
        tasks = [e.refreshing for e in self._models.values() if e.refreshing is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _live(self, entry: _Model, now: float) -> list[str]:
        keep = self._ttl
        if self._outage_since is not None and now - self._outage_since < self._outage_grace:
            keep = max(keep, self._outage_grace)
        return [worker for worker, seen in entry.seen.items() if now - seen < keep]

    async def _learn(self, model: str, entry: _Model) -> str:
        """Ask the controller now (nothing usable is known) and remember its answer."""
        entry.asked = self._clock()
        try:
            worker = await self._ask(model)
        except errors.APIError as exc:
            self._note_outage(exc)
            raise
        self._outage_since = None
        entry.seen[worker] = self._clock()
        return worker

    async def _learn_or_fall_back(self, model: str, entry: _Model) -> str:
        """Ask the controller; if it cannot be reached, fall back on workers it named within
        the outage grace."""
        try:
            return await self._learn(model, entry)
        except errors.APIError:
            live = self._live(entry, self._clock())
            if not live:
                raise
            entry.turn += 1
            return live[entry.turn % len(live)]

    async def _refresh(self, model: str, entry: _Model) -> None:
        """A background ask; failures only mean the known workers are kept a little longer."""
        try:
            await self._learn(model, entry)
        except errors.APIError as exc:
            log.warning("Refreshing the workers of %s failed: %s", model, exc)
        finally:
            entry.refreshing = None

    def _note_outage(self, exc: errors.APIError) -> None:
        if exc.code == "controller_unreachable" and self._outage_since is None:
            self._outage_since = self._clock()
