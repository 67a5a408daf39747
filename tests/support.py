"""Helpers shared by the test modules: request bodies, the one SSE reader, a clock moved by hand
and a wait for conditions. Test modules import from here, never from one another."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any, AsyncIterator, Awaitable, Callable

from prometheus_client.parser import text_string_to_metric_families

from fastchat_api import errors

# -- request bodies for the stand-in (``devstack.standin.StandIn`` serves MODEL) -----------------

MODEL = "fake-model"
MESSAGES = [{"role": "user", "content": "Hi"}]
CHAT = {"model": MODEL, "messages": MESSAGES}
COMPLETION = {"model": MODEL, "prompt": "Once upon a time"}
EMBEDDING = {"model": MODEL, "input": "Hello world"}

# -- server-sent events ------------------------------------------------------------------------

DONE_EVENT = "data: [DONE]"


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON objects of a whole SSE body, in order, ``[DONE]`` left out.

    Fails unless every event is one ``data:`` line of a JSON object and ``[DONE]`` comes last
    (and only there), so a stream cut short or ended twice fails the test that reads it.
    """
    text = raw.decode()
    assert text.endswith("\n\n"), f"the body ends mid-event: ...{text[-200:]!r}"
    blocks = text[: -len("\n\n")].split("\n\n")
    assert blocks[-1] == DONE_EVENT, f"[DONE] is not the last event: ...{text[-200:]!r}"
    events = []
    for block in blocks[:-1]:
        assert block.startswith("data: ") and "\n" not in block, f"not one data line: {block!r}"
        data = json.loads(block.removeprefix("data: "))  # a [DONE] before the end fails here
        assert isinstance(data, dict), f"an event that is not an object: {block!r}"
        events.append(data)
    return events


async def read_events(resp: Any) -> list[dict[str, Any]]:
    """``sse_events`` of a response's whole body (aiohttp's client or test client)."""
    return sse_events(await resp.read())


def text_of(chunk: dict[str, Any]) -> str:
    """The generated text a chat or completion chunk carries ("" for role, usage and finish)."""
    if not chunk.get("choices"):
        return ""
    (choice,) = chunk["choices"]
    if "delta" in choice:
        return choice["delta"].get("content") or ""
    return choice.get("text") or ""


def with_text(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunks that carry generated text: what a loop over a stream's chunks must first
    check there are, or it passes on a stream that carries none."""
    return [chunk for chunk in chunks if text_of(chunk)]


def streamed_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    """Choice ``index``'s whole text, joined from its chunks."""
    return "".join(text_of(c) for c in chunks if c.get("choices") and c["choices"][0]["index"] == index)


# -- generations that fail on cue ------------------------------------------------------------


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


# -- time and conditions -----------------------------------------------------------------------


class FakeClock:
    """A monotonic clock the test moves by hand: time-based rules tested without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


HANG_GUARD = 5.0  # seconds after which a test that would hang on a missed cancellation fails


async def until(check: Callable[[], bool | Awaitable[bool]], *, timeout: float = 5.0) -> None:
    """Wait for ``check()`` to hold, yielding to the loop between checks (no sleeping): for a
    state the test cannot await directly (a disconnect noticed, a signal handled). Fails after
    ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0)


# -- Prometheus scrapes -----------------------------------------------------------------------

async def scrape(client, **headers: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape by name and labels."""
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await resp.text())
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before, after, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
