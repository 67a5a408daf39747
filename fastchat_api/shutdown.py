"""Graceful shutdown: in-flight requests get ``server.shutdown_timeout`` to finish, and those
still running then end with a last word to their client rather than a cut connection.

aiohttp's own shutdown waits for handlers, then cancels them and closes their connections in
the same step, which leaves no moment to tell a stream's client why it ends. So the app waits
first, in ``on_shutdown``, when the listening sockets and idle connections are already closed:
handlers still running after the timeout are cancelled while their connections are open, and
the error middleware ends each one (an in-band error event, or a 503) before letting the
cancellation go on. aiohttp's wait that follows then finds nothing left to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Iterator

from aiohttp import web

from .typedefs import config_key, draining_key

log = logging.getLogger(__name__)

# Seconds a cancelled handler has to write its last word: a client that reads nothing must not
# hold the shutdown up.
FAREWELL_TIMEOUT = 1.0


class Draining:
    """The handlers of in-flight requests, and whether the server is shutting down."""

    def __init__(self) -> None:
        self.started = False
        self._handlers: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Around one request's handler: the task to cancel if it outlives the grace period."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._idle.clear()
        try:
            yield
        finally:
            self._handlers.discard(task)
            if not self._handlers:
                self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for in-flight handlers, then cancel the rest and give them
        ``FAREWELL_TIMEOUT`` to say so."""
        self.started = True
        if await self._idle_within(timeout):
            return
        log.warning("Shutting down: ending %d requests still running after %g s",
                    len(self._handlers), timeout)
        for task in self._handlers:
            task.cancel()
        await self._idle_within(FAREWELL_TIMEOUT)

    async def _idle_within(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


async def drain_on_shutdown(app: web.Application) -> None:
    """``on_shutdown`` hook, for ``python -m fastchat_api`` and gunicorn alike."""
    await app[draining_key].drain(app[config_key].server.shutdown_timeout)
