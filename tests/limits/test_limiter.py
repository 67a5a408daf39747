"""The limiter's storages: buckets at their edges, all-or-nothing checks, settlement, slots.

The in-process storage runs on a clock the test moves; the Redis storage (a real
``redis-server``) takes Redis's clock, so only what does not depend on time is checked on both.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fastchat_api.limits.limiter import PERIOD, MemoryStorage, Rate, Slot, Storage, StorageError
from fastchat_api.limits.redis_store import RedisStorage

from ..support import FakeClock

RPM5 = Rate("t:rpm", "requests", 5, 1)


def tokens(cost: int, limit: int = 1000) -> Rate:
    return Rate("t:tpm", "tokens", limit, cost)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory(clock) -> MemoryStorage:
    return MemoryStorage(clock)


@pytest.fixture(params=["memory", "redis"])
async def storage(request) -> Storage:
    if request.param == "memory":
        store: Storage = MemoryStorage()
    else:
        store = RedisStorage(request.getfixturevalue("redis_url"), timeout=1.0, slot_timeout=60)
    yield store
    await store.close()


async def admitted(store: Storage, *rates: Rate, slots: tuple[Slot, ...] = (), holder: str = "h") -> bool:
    return (await store.acquire(rates, slots, holder)).refused is None


# -- the bucket at its edges (in-process, on the test's clock) -----------------------------------


async def test_a_full_bucket_admits_again_exactly_when_one_unit_has_drained(memory, clock):
    for _ in range(5):
        assert await admitted(memory, RPM5)
    verdict = await memory.acquire([RPM5], [], "h")
    assert verdict.refused == 0 and verdict.retry_after == pytest.approx(PERIOD / 5)
    clock.advance(PERIOD / 5 - 0.001)
    assert not await admitted(memory, RPM5)
    clock.advance(0.001)
    assert await admitted(memory, RPM5)
    assert not await admitted(memory, RPM5)


async def test_the_levels_give_remaining_units_and_seconds_until_empty(memory, clock):
    first = await memory.acquire([RPM5], [], "h")
    assert first.levels[0].remaining == 4 and first.levels[0].reset == pytest.approx(12.0)
    await memory.acquire([RPM5], [], "h")
    clock.advance(6)
    third = await memory.acquire([RPM5], [], "h")
    # 2 units drained by half a unit, plus this one: 2.5 held, 2 whole units remaining
    assert third.levels[0].remaining == 2 and third.levels[0].reset == pytest.approx(30.0)


async def test_a_whole_minute_empties_the_bucket(memory, clock):
    for _ in range(5):
        await memory.acquire([RPM5], [], "h")
    clock.advance(PERIOD)
    for _ in range(5):
        assert await admitted(memory, RPM5)


async def test_a_cost_above_the_limit_is_admitted_into_an_empty_bucket_and_leaves_a_debt(memory, clock):
    assert await admitted(memory, tokens(3000, limit=1000))
    verdict = await memory.acquire([tokens(1, limit=1000)], [], "h")
    assert verdict.refused == 0
    # 3000 held: 2001 must drain before one more token fits, at 1000 a minute
    assert verdict.retry_after == pytest.approx(2001 * PERIOD / 1000)
    clock.advance(2001 * PERIOD / 1000)
    assert await admitted(memory, tokens(1, limit=1000))


async def test_a_changed_limit_applies_at_once(memory):
    assert await admitted(memory, Rate("k", "requests", 2, 1))
    assert await admitted(memory, Rate("k", "requests", 2, 1))
    assert not await admitted(memory, Rate("k", "requests", 2, 1))
    assert await admitted(memory, Rate("k", "requests", 100, 1))


async def test_settlement_moves_the_level_both_ways(memory, clock):
    rate = tokens(600)
    await memory.acquire([rate], [], "h")
    await memory.release([(rate, -500)], [], "h")  # used 100 of the 600 estimated
    assert (await memory.acquire([tokens(900)], [], "h")).refused is None  # 100 + 900 fit
    await memory.release([(tokens(900), 1)], [], "h")  # one more than estimated
    verdict = await memory.acquire([tokens(1)], [], "h")
    # 1001 held: 2 must drain before one more token fits
    assert verdict.refused == 0 and math.isclose(verdict.retry_after, 2 * PERIOD / 1000)


async def test_a_refund_never_takes_the_level_below_empty(memory):
    await memory.release([(tokens(0), -10_000)], [], "h")
    assert (await memory.acquire([tokens(1000)], [], "h")).levels[0].remaining == 0


# -- the same on both storages -----------------------------------------------------------------


async def test_a_refused_check_changes_nothing(storage):
    requests = Rate("both:rpm", "requests", 5, 1)
    assert await admitted(storage, requests, Rate("both:tpm", "tokens", 100, 100))
    # the tokens refuse, so the request is not counted either
    for _ in range(3):
        verdict = await storage.acquire([requests, Rate("both:tpm", "tokens", 100, 1)], [], "h")
        assert verdict.refused == 1
    verdict = await storage.acquire([requests], [], "h")
    assert verdict.refused is None and verdict.levels[0].remaining == 3


async def test_slots_are_held_until_released(storage):
    slot = Slot("s:parallel", 2)
    assert await admitted(storage, slots=(slot,), holder="a")
    assert await admitted(storage, slots=(slot,), holder="b")
    verdict = await storage.acquire([], [slot], "c")
    assert verdict.refused == 0 and verdict.retry_after == 1.0
    await storage.release([], [slot], "a")
    assert await admitted(storage, slots=(slot,), holder="c")


async def test_a_refused_slot_takes_no_unit_of_a_rate(storage):
    slot, rate = Slot("s2:parallel", 1), Rate("s2:rpm", "requests", 5, 1)
    assert await admitted(storage, rate, slots=(slot,), holder="a")
    assert (await storage.acquire([rate], [slot], "b")).refused == 1
    assert (await storage.acquire([rate], [], "b")).levels[0].remaining == 3


async def test_settled_tokens_are_given_back(storage):
    rate = Rate("s3:tpm", "tokens", 1000, 800)
    assert await admitted(storage, rate)
    await storage.release([(rate, -700)], [], "h")
    assert await admitted(storage, Rate("s3:tpm", "tokens", 1000, 850))


async def test_rpm_5_admits_exactly_5_of_many_concurrent_checks(storage):
    rate = Rate("s4:rpm", "requests", 5, 1)
    verdicts = await asyncio.gather(*(storage.acquire([rate], [], str(n)) for n in range(40)))
    assert sum(v.refused is None for v in verdicts) == 5


# -- Redis: its own slot expiry and failures ----------------------------------------------------


async def test_redis_frees_the_slots_of_a_holder_that_never_released(redis_url):
    store = RedisStorage(redis_url, timeout=1.0, slot_timeout=0.2)
    slot = Slot("lost:parallel", 1)
    try:
        assert await admitted(store, slots=(slot,), holder="died")
        assert not await admitted(store, slots=(slot,), holder="next")
        await asyncio.sleep(0.3)
        assert await admitted(store, slots=(slot,), holder="next")
    finally:
        await store.close()


async def test_redis_down_fails_fast_and_stays_quiet_for_a_second(redis_stack):
    server = redis_stack.processes[0]
    clock = FakeClock()
    store = RedisStorage(server.url, timeout=0.5, slot_timeout=60, clock=clock)
    try:
        assert await admitted(store, RPM5)
        server.stop()
        with pytest.raises(StorageError, match="Redis at redis://"):
            await store.acquire([RPM5], [], "h")
        redis_stack.start_redis(server.port)
        with pytest.raises(StorageError, match="failed less than 1 s ago"):
            await store.acquire([RPM5], [], "h")
        clock.advance(1.0)
        assert await admitted(store, RPM5)
    finally:
        await store.close()


async def test_a_redis_that_does_not_answer_is_a_timeout_not_a_hang(redis_stack):
    server = redis_stack.processes[0]
    store = RedisStorage(server.url, timeout=0.2, slot_timeout=60)
    try:
        assert await admitted(store, RPM5)
        os.kill(server.pid, signal.SIGSTOP)
        try:
            async with asyncio.timeout(2):
                with pytest.raises(StorageError, match="no answer within 0.2 s|Timeout"):
                    await store.acquire([RPM5], [], "h")
        finally:
            os.kill(server.pid, signal.SIGCONT)
    finally:
        await store.close()


def test_the_redis_client_is_loaded_only_for_a_redis_url():
    """Seven megabytes of every process that does not use it (a gunicorn worker each)."""
    code = ("import sys; from fastchat_api.config import load_config; from fastchat_api.app import create_app; "
            "from fastchat_api.limits import storage_of; "
            "create_app(load_config(None)); assert 'redis' not in sys.modules, 'loaded without redis_url'; "
            "print(type(storage_of(load_config(None, {'limits': {'redis_url': 'redis://127.0.0.1:1/0'}}).limits)).__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "RedisStorage"
