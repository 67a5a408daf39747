"""Server-sent events out, worker frames in: the relay between a worker and a client.

Workers send the cumulative text in every frame; clients want deltas. Several choices are
generated concurrently and their frames interleaved as they come. The SSE response is opened
only once every choice's first frame has arrived, so that a worker failing at once still reaches
the client as an HTTP error instead of a broken stream.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator, AsyncIterator, Callable, Sequence

from aiohttp import web

from . import errors, metrics
from .jsonutil import dumps
from .record import record_of

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_REPLACEMENT = "\ufffd"

Frames = AsyncGenerator[dict[str, Any], None]  # closed with aclose() when not read to the end
# (choice index, new text, the frame it came from, whether the choice ends here) -> one event
Chunk = Callable[[int, str, dict[str, Any], bool], bytes]


def event(obj: Any) -> bytes:
    """One SSE event: ``data: <json>`` and a blank line."""
    return b"data: " + dumps(obj) + b"\n\n"


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the 200 and SSE headers; never compressed, which would hold events back.

    Called once the first frames are in, so this is the stream's time to first token.
    """
    response = web.StreamResponse(headers=SSE_HEADERS)
    record = record_of(request)
    record.stream = response
    await response.prepare(request)
    metrics.first_token(record)
    return response


class TextDelta:
    """Turns a worker's cumulative text into the part not yet sent.

    A trailing U+FFFD is half of a multi-byte character the next frame completes, so it is held
    back until then (FastChat deletes every U+FFFD, legitimate ones included).
    """

    __slots__ = ("sent",)

    def __init__(self, skip: int = 0) -> None:
        self.sent = skip

    def __call__(self, text: str, final: bool = False) -> str:
        if not final:
            text = text.rstrip(_REPLACEMENT)
        if len(text) <= self.sent:
            return ""
        delta = text[self.sent :]
        self.sent = len(text)
        return delta


async def _chain(first: dict[str, Any], rest: Frames) -> Frames:
    yield first
    async for frame in rest:
        yield frame


async def first_frames(streams: Sequence[Frames]) -> list[Frames]:
    """Wait for every stream's first frame; if any fails or is empty, close all and raise."""
    tasks = [asyncio.ensure_future(anext(stream, None)) for stream in streams]
    try:
        firsts = [await tasks[0]] if len(tasks) == 1 else await asyncio.gather(*tasks)
        present = [first for first in firsts if first is not None]
        if len(present) < len(firsts):
            raise errors.upstream_failed("The worker closed the stream without sending a frame")
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(stream.aclose() for stream in streams), return_exceptions=True)
        raise
    return [_chain(first, stream) for first, stream in zip(present, streams)]


async def interleave(streams: Sequence[Frames]) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """``(index, frame)`` from several streams as frames arrive; the first error ends all."""
    if len(streams) == 1:
        async for frame in streams[0]:
            yield 0, frame
        return
    # (stream index, a frame / the error that ended the stream / None when it ended well)
    queue: asyncio.Queue[tuple[int, dict[str, Any] | Exception | None]] = asyncio.Queue()

    async def pump(index: int, stream: Frames) -> None:
        try:
            async for frame in stream:
                queue.put_nowait((index, frame))
        except Exception as exc:
            queue.put_nowait((index, exc))
        else:
            queue.put_nowait((index, None))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def relay(response: web.StreamResponse, streams: Sequence[Frames], chunk: Chunk) -> list[dict[str, Any]]:
    """Write each choice's new text as it comes, and its end when it ends; the last frames.

    A choice whose worker stops without a finish reason (e.g. sglang's) is ended afterwards
    with its last frame, the text held back so far included.
    """
    count = len(streams)
    deltas = [TextDelta() for _ in range(count)]
    lasts: list[dict[str, Any]] = [{} for _ in range(count)]
    finished = [False] * count
    async for index, frame in interleave(streams):
        lasts[index] = frame
        finished[index] = frame.get("finish_reason") is not None
        text = deltas[index](frame.get("text", ""), finished[index])
        if text or finished[index]:
            await response.write(chunk(index, text, frame, finished[index]))
    for index in range(count):
        if not finished[index]:
            text = deltas[index](lasts[index].get("text", ""), True)
            await response.write(chunk(index, text, lasts[index], True))
    return lasts
