"""Time in tests: a clock moved by hand, and the one wait for a condition."""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable


class FakeClock:
    """A monotonic clock the test moves by hand: time-based rules tested without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


HANG_GUARD = 5.0  # seconds after which a test that would hang on a missed cancellation fails


async def until(check: Callable[[], object | Awaitable[object]],
                what: str | Callable[[], str] = "the condition", *,
                timeout: float = 5.0, every: float = 0.0) -> None:
    """Wait for ``check()`` (or what it returns, awaited) to be true: for a state the test cannot
    await directly (a disconnect noticed, a signal handled, a line in another process's log).

    Between checks it yields to the loop (``every=0``: nothing to wait for but this loop's own
    work) or sleeps ``every`` seconds (another process's doing, polled). Fails with an
    :class:`AssertionError` naming ``what`` (or what ``what()`` then says) after ``timeout``
    seconds.
    """
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"{what if isinstance(what, str) else what()}: not within {timeout} s") from None
