"""``gather_or_cancel``: the concurrent choices and batches of one request, none left running
for nobody once one has failed or the request is gone."""

from __future__ import annotations

import asyncio

import pytest

from fastchat_api.aio import gather_or_cancel

from .support import until


class Waits:
    """Awaitables that record being stopped; one left running records nothing."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[str] = []

    async def forever(self, name: str) -> None:
        self.started.append(name)
        try:
            await asyncio.Event().wait()
        finally:
            self.ended.append(name)


async def fails() -> None:
    await asyncio.sleep(0)  # the others are waiting by now
    raise ValueError("boom")


async def value(number: int) -> int:
    await asyncio.sleep(0)
    return number


async def test_results_come_in_order():
    assert await gather_or_cancel(value(n) for n in (3, 1, 2)) == [3, 1, 2]
    assert await gather_or_cancel([value(7)]) == [7]


async def test_one_failure_cancels_the_rest():
    waits = Waits()
    with pytest.raises(ValueError, match="boom"):
        await gather_or_cancel([waits.forever("a"), fails(), waits.forever("b")])
    await until(lambda: len(waits.ended) == 2, timeout=1)
    assert sorted(waits.ended) == ["a", "b"]


async def test_cancelling_the_caller_cancels_every_awaitable():
    """The handler is cancelled when its client hangs up: no generation goes on for nobody."""
    waits = Waits()
    task = asyncio.create_task(gather_or_cancel([waits.forever("a"), waits.forever("b")]))
    await until(lambda: len(waits.started) == 2, timeout=1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(waits.ended) == ["a", "b"]
