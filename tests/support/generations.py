"""Generations that fail on cue, in place of the worker client's."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from fastchat_api import errors


class Generations:
    """Stands in for the worker client's ``generate`` and ``generate_stream`` (set on the app's
    ``Upstream.client``): once all ``count`` are under way (a stream's first frame sent),
    number ``fail`` fails and the others wait for a frame that never comes. ``ended`` lists
    the others that were stopped; one left running is never listed."""

    def __init__(self, count: int, fail: int = 0) -> None:
        self.count, self.fail = count, fail
        self.started = self.waiting = 0
        self.all_waiting = asyncio.Event()
        self.ended: list[int] = []

    def _number(self) -> int:
        number, self.started = self.started, self.started + 1
        return number

    async def _run(self, number: int) -> None:
        self.waiting += 1
        if self.waiting == self.count:
            self.all_waiting.set()
        try:
            await self.all_waiting.wait()
            if number == self.fail:
                raise errors.upstream_failed(f"Generation {number} failed")
            await asyncio.Event().wait()
        finally:
            if number != self.fail:
                self.ended.append(number)

    async def generate(self, worker: str, params: dict[str, Any]) -> dict[str, Any]:
        await self._run(self._number())
        raise AssertionError("unreachable")

    async def generate_stream(self, worker: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        number = self._number()
        yield {"text": f"first {number}", "error_code": 0, "finish_reason": None}
        await self._run(number)

    def others(self) -> list[int]:
        """The generations that did not fail, each of which should have been stopped."""
        return [number for number in range(self.count) if number != self.fail]
