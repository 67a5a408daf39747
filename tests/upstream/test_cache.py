"""The shared control-plane cache: one fetch at a time, stale values served while refreshing,
too-old values never served."""

from __future__ import annotations

import asyncio

import pytest

from fastchat_api.upstream.cache import Cached

from ..support import FakeClock, until


class Source:
    """A control-plane answer: the fetch number, once ``answer`` is set (at once by default)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.answer = asyncio.Event()
        self.answer.set()

    async def fetch(self) -> int:
        self.calls += 1
        await self.answer.wait()
        if self.fail:
            raise RuntimeError("down")
        return self.calls


async def test_concurrent_first_reads_share_one_fetch():
    source = Source()
    source.answer.clear()
    cached = Cached(source.fetch, ttl=10, max_age=10, name="x", clock=FakeClock())
    readers = asyncio.gather(*(cached.get() for _ in range(50)))
    await until(lambda: source.calls == 1)  # every reader is waiting on the one fetch
    source.answer.set()
    assert await readers == [1] * 50
    assert source.calls == 1


async def test_stale_value_is_served_while_one_refresh_runs():
    source, clock = Source(), FakeClock()
    cached = Cached(source.fetch, ttl=1, max_age=10, name="x", clock=clock)
    assert await cached.get() == 1
    clock.advance(2)
    assert [await cached.get() for _ in range(5)] == [1] * 5  # no caller waits
    for _ in range(5):  # the one background refresh runs
        await asyncio.sleep(0)
    assert await cached.get() == 2 and source.calls == 2


async def test_a_failed_refresh_keeps_the_value_until_max_age_then_raises():
    source, clock = Source(), FakeClock()
    cached = Cached(source.fetch, ttl=1, max_age=10, name="x", clock=clock)
    await cached.get()
    source.fail = True
    clock.advance(2)
    assert await cached.get() == 1
    assert await cached.fresh() == 1  # fetched now, failed, stale is still young enough
    clock.advance(10)
    with pytest.raises(RuntimeError):
        await cached.get()
    with pytest.raises(RuntimeError):
        await cached.fresh()
    source.fail = False
    assert await cached.get() > 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch():
    source = Source()
    source.answer.clear()
    cached = Cached(source.fetch, ttl=10, max_age=10, name="x", clock=FakeClock())
    first = asyncio.create_task(cached.get())
    second = asyncio.create_task(cached.get())
    await until(lambda: source.calls == 1)  # both wait on the fetch
    first.cancel()
    await asyncio.sleep(0)
    source.answer.set()
    assert await second == 1
    assert first.cancelled() and source.calls == 1
