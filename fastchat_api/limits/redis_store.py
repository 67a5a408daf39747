"""The limits' state in Redis, shared by every gateway process and host that names the same
server (``limits.redis_url``): the same buckets and slots as ``limiter.MemoryStorage``, each
check one Lua script (one round trip, atomic on the server).

The scripts take the time from Redis (``TIME``), so the gateways' clocks need not agree. A slot
is a member of a sorted set scored with its expiry: a process that dies holding slots loses them
after ``limits.slot_timeout`` seconds. A call that fails or takes longer than
``limits.redis_timeout`` raises ``StorageError``; for a second after a failure calls fail at
once, so that an outage costs requests no waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .limiter import PERIOD, SLOT_RETRY, Clock, Level, Rate, Slot, StorageError, Verdict

RETRY_INTERVAL = 1.0  # seconds after a failure during which Redis is not asked

# A rate's level now: its stored level drained at ``limit`` units per ``period`` since it was
# stored (the bucket both scripts read).
_DRAINED = """
local function drained(key, limit, period, now)
  local state = redis.call('HMGET', key, 'level', 'at')
  if not state[1] then
    return 0
  end
  return math.max(0, tonumber(state[1]) - (now - tonumber(state[2])) * limit / period)
end
"""

# KEYS: the rates' hashes, then the slots' sorted sets.
# ARGV: period, slot timeout (s), holder, number of rates, then limit and cost of each rate,
# then the limit of each slot, then the seconds a refused slot waits. Reply: refused index (-1: admitted), retry after (ms), then each
# rate's remaining units and reset (ms).
_ACQUIRE = _DRAINED + """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period, lease, holder, n = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local levels, refused, retry = {}, -1, 0
for i = 1, n do
  local limit, cost = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local level = drained(KEYS[i], limit, period, now)
  levels[i] = level
  local over = level + math.min(cost, limit) - limit
  if refused < 0 and over > 1e-9 then
    refused, retry = i - 1, over * period / limit
  end
end
for j = n + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now)
  if refused < 0 and redis.call('ZCARD', KEYS[j]) >= tonumber(ARGV[4 + n + j]) then
    refused, retry = j - 1, tonumber(ARGV[#ARGV])
  end
end
local reply = {refused, math.ceil(retry * 1000)}
for i = 1, n do
  local limit, cost = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local level = levels[i]
  if refused < 0 then
    level = level + cost
    redis.call('HSET', KEYS[i], 'level', level, 'at', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(level * period / limit * 1000) + 1000)
  end
  reply[#reply + 1] = math.max(0, math.floor(limit - level + 1e-9))
  reply[#reply + 1] = math.ceil(level * period / limit * 1000)
end
if refused < 0 then
  for j = n + 1, #KEYS do
    redis.call('ZADD', KEYS[j], now + lease, holder)
    redis.call('PEXPIRE', KEYS[j], math.ceil(lease * 1000))
  end
end
return reply
"""

# KEYS: the rates' hashes, then the slots' sorted sets.
# ARGV: period, holder, number of rates, then limit and units to add of each rate.
_RELEASE = _DRAINED + """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period, holder, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
for i = 1, n do
  local limit, units = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local level = drained(KEYS[i], limit, period, now)
  level = math.max(0, level + units)
  redis.call('HSET', KEYS[i], 'level', level, 'at', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil(level * period / limit * 1000) + 1000)
end
for j = n + 1, #KEYS do
  redis.call('ZREM', KEYS[j], holder)
end
return 0
"""


class RedisStorage:
    """``limiter.Storage`` in Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``)."""

    remote = True

    def __init__(self, url: str, *, timeout: float, slot_timeout: float,
                 clock: Clock = time.monotonic) -> None:
        self.url = url
        self._redis = redis.asyncio.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0,
        )
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._timeout = timeout
        self._slot_timeout = slot_timeout
        self._clock = clock
        self._quiet_until = 0.0

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        if self._clock() < self._quiet_until:
            raise StorageError(f"Redis at {self.url} failed less than {RETRY_INTERVAL:g} s ago")
        try:
            async with asyncio.timeout(self._timeout):
                return await script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._quiet_until = self._clock() + RETRY_INTERVAL
            reason = str(exc) or f"no answer within {self._timeout:g} s"
            raise StorageError(f"Redis at {self.url}: {reason}") from None

    async def acquire(self, rates: Sequence[Rate], slots: Sequence[Slot], holder: str) -> Verdict:
        args: list[Any] = [PERIOD, self._slot_timeout, holder, len(rates)]
        for rate in rates:
            args += [rate.limit, rate.cost]
        args += [slot.limit for slot in slots] + [SLOT_RETRY]
        reply = await self._run(self._acquire, [r.name for r in rates] + [s.name for s in slots], args)
        refused, retry_ms, *numbers = (int(value) for value in reply)
        levels = tuple(Level(numbers[i], numbers[i + 1] / 1000) for i in range(0, len(numbers), 2))
        if refused < 0:
            return Verdict(levels)
        return Verdict(levels, refused, retry_ms / 1000)

    async def release(self, settle: Sequence[tuple[Rate, int]], slots: Sequence[Slot],
                      holder: str) -> None:
        args: list[Any] = [PERIOD, holder, len(settle)]
        for rate, units in settle:
            args += [rate.limit, units]
        await self._run(self._release, [r.name for r, _ in settle] + [s.name for s in slots], args)

    async def close(self) -> None:
        await self._redis.aclose()
