"""Helpers shared by the test modules."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock the test moves by hand: time-based rules tested without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
