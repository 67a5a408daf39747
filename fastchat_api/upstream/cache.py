"""A value fetched from upstream, shared by every request and refreshed without stalling them.

Control-plane answers (the model list, a worker's template) change rarely but are read on every
request. Waiting on a lock whenever one expires makes every request of that moment queue behind
one call; fetching it once per request multiplies the calls. So one fetch at a time runs, and
while a value is merely stale it keeps being served as the refresh runs in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
# Seconds on a monotonic scale; tests pass their own to move time without sleeping.
Clock = Callable[[], float]


class Cached(Generic[T]):
    """Fresh for ``ttl`` seconds; then served stale (refreshing in the background) up to
    ``max_age``; older than that, or never fetched, callers wait for one shared fetch."""

    __slots__ = ("_fetch", "_ttl", "_max_age", "_value", "_at", "_task", "_name", "_clock")

    def __init__(
        self, fetch: Callable[[], Awaitable[T]], *, ttl: float, max_age: float, name: str,
        clock: Clock = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._max_age = max(ttl, max_age)
        self._name = name
        # Unset until the first fetch: never read before, as ``age`` is infinite until then.
        self._value: T
        self._at = float("-inf")
        self._task: asyncio.Task[T] | None = None

    @property
    def age(self) -> float:
        """Seconds since the value was fetched (infinite before the first fetch)."""
        return self._clock() - self._at

    async def get(self) -> T:
        """The value, fetching only when it is missing or too old to serve."""
        age = self.age
        if age < self._ttl:
            return self._value
        if age < self._max_age:
            self._start()
            return self._value
        return await asyncio.shield(self._start())

    async def fresh(self) -> T:
        """A value fetched now (sharing a fetch already running); if that fails, the stale
        value while it is younger than ``max_age``."""
        try:
            return await asyncio.shield(self._start())
        except Exception:
            if self.age < self._max_age:
                return self._value
            raise

    def _start(self) -> asyncio.Task[T]:
        if self._task is None:
            self._task = asyncio.create_task(self._refresh())
            self._task.add_done_callback(self._log_failure)
        return self._task

    async def _refresh(self) -> T:
        try:
            value = await self._fetch()
            self._value, self._at = value, self._clock()
            return value
        finally:
            self._task = None

    def _log_failure(self, task: asyncio.Task[T]) -> None:
        """Retrieve a background failure (callers that waited got it raised)."""
        if not task.cancelled() and task.exception() is not None:
            log.warning("Refreshing %s failed: %s", self._name, task.exception())

    def cancel(self) -> None:
        """Stop a refresh in flight (on shutdown)."""
        if self._task is not None:
            self._task.cancel()
