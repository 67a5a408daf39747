"""The limiter: per-minute rates (requests, tokens) and parallel slots, checked together in one
atomic step of a pluggable storage, and the in-process storage.

A rate is a bucket that holds ``limit`` units and drains continuously at ``limit`` units a
minute (a leaky bucket, which is what OpenAI's "replenished continuously" limits are): a request
is admitted while the bucket has room for its cost, so ``rpm: 5`` admits 5 requests at once and
then one every 12 s. The bucket's state is its level and when it was measured, in units, so a
changed limit applies at once. A cost larger than the whole limit (a request estimated at more
tokens than the key's ``tpm``) is admitted when the bucket is empty and leaves it in debt: the
long-run rate is still the limit, and no request is refused forever. A slot is one of
``limit`` requests in flight, held until the request ends.

Every check reads and updates all of a request's limits at once and changes nothing unless all
admit it, so that a request refused by its tokens does not use up a request. After the answer
the tokens charged (an estimate made before) are settled with the worker's count.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

PERIOD = 60.0  # seconds: rpm and tpm are per minute
SLOT_RETRY = 1.0  # seconds a client refused a slot is told to wait (requests end at any time)
EPSILON = 1e-9  # float slack: a bucket exactly full admits nothing more, exactly room admits

Clock = Callable[[], float]


class StorageError(Exception):
    """The storage could not be asked (unreachable, timed out); the message says why."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A per-minute limit of ``limit`` units named ``name`` in the storage; the request costs
    ``cost`` units of it. ``kind`` is OpenAI's word for the units: ``requests`` or ``tokens``."""

    name: str
    kind: str
    limit: int
    cost: int


@dataclass(frozen=True, slots=True)
class Slot:
    """At most ``limit`` requests in flight under ``name``."""

    name: str
    limit: int


@dataclass(frozen=True, slots=True)
class Level:
    """A rate as one request left it: whole units remaining, seconds until the bucket is empty
    again (OpenAI's "reset")."""

    remaining: int
    reset: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """A check's outcome: each rate's level (after the request when admitted), and when
    refused, the index of the limit that refused (rates first, then slots) and the seconds
    until it would admit the request."""

    levels: tuple[Level, ...]
    refused: int | None = None
    retry_after: float = 0.0


class Storage(Protocol):
    """Where the limits' state lives: this process (:class:`MemoryStorage`) or Redis
    (``redis_store.RedisStorage``). Both raise :class:`StorageError` when they cannot answer.
    ``remote``: whether a call waits on I/O, so that a cancellation could cut it short."""

    remote: bool

    async def acquire(self, rates: Sequence[Rate], slots: Sequence[Slot], holder: str) -> Verdict:
        """Check every limit; if all admit the request, charge each rate its cost and take a
        slot of each for ``holder`` (unique per request). Atomic."""

    async def release(self, settle: Sequence[tuple[Rate, int]], slots: Sequence[Slot],
                      holder: str) -> None:
        """Add each ``(rate, units)`` (negative: give back) and free ``holder``'s slots."""

    async def close(self) -> None:
        """Let go of connections."""


def drained(level: float, elapsed: float, limit: int) -> float:
    """A bucket's level ``elapsed`` seconds after it was ``level``."""
    return max(0.0, level - elapsed * limit / PERIOD)


def overflow(level: float, rate: Rate) -> float:
    """Units by which ``rate``'s cost (at most the whole limit) does not fit at ``level``;
    positive when the rate refuses the request."""
    return level + min(rate.cost, rate.limit) - rate.limit


def level_of(level: float, limit: int) -> Level:
    """What the headers say of a bucket at ``level``."""
    return Level(max(0, math.floor(limit - level + EPSILON)), level * PERIOD / limit)


class MemoryStorage:
    """The limits' state in this process: exact for one process, and costing a few
    microseconds a request. ``clock`` is monotonic seconds (tests move their own)."""

    remote = False  # no call ever waits

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name: (level, when)
        self._held: dict[str, int] = {}

    def _level(self, rate: Rate, now: float) -> float:
        level, when = self._buckets.get(rate.name, (0.0, now))
        return drained(level, now - when, rate.limit)

    async def acquire(self, rates: Sequence[Rate], slots: Sequence[Slot], holder: str) -> Verdict:
        now = self._clock()
        levels = [self._level(rate, now) for rate in rates]
        for index, (rate, level) in enumerate(zip(rates, levels)):
            over = overflow(level, rate)
            if over > EPSILON:
                return Verdict(tuple(level_of(lv, r.limit) for lv, r in zip(levels, rates)),
                               index, over * PERIOD / rate.limit)
        for index, slot in enumerate(slots, len(rates)):
            if self._held.get(slot.name, 0) >= slot.limit:
                return Verdict(tuple(level_of(lv, r.limit) for lv, r in zip(levels, rates)),
                               index, SLOT_RETRY)
        for rate, level in zip(rates, levels):
            self._buckets[rate.name] = (level + rate.cost, now)
        for slot in slots:
            self._held[slot.name] = self._held.get(slot.name, 0) + 1
        return Verdict(tuple(level_of(level + r.cost, r.limit) for level, r in zip(levels, rates)))

    async def release(self, settle: Sequence[tuple[Rate, int]], slots: Sequence[Slot],
                      holder: str) -> None:
        now = self._clock()
        for rate, units in settle:
            self._buckets[rate.name] = (max(0.0, self._level(rate, now) + units), now)
        for slot in slots:
            held = self._held.pop(slot.name, 0) - 1
            if held > 0:
                self._held[slot.name] = held

    async def close(self) -> None:
        """Nothing to let go of."""
