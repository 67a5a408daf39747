"""Server-sent events out, worker frames in: the relay between a worker and a client.

Workers send the cumulative text (and log-probabilities) in every frame; clients want deltas,
and the text sent is their one cursor (``Cursor``). Several choices are
generated concurrently and their frames interleaved as they come. The SSE response is opened
only once every choice's first frame has arrived, so that a worker failing at once still reaches
the client as an HTTP error instead of a broken stream.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator, AsyncIterator, Callable, Mapping, NamedTuple, Sequence

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


def event(obj: Any) -> bytes:
    """One SSE event: ``data: <json>`` and a blank line."""
    return b"data: " + dumps(obj) + b"\n\n"


async def open_stream(request: web.Request, headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    """Send the 200 and SSE headers (and ``headers``); never compressed, which would hold
    events back.

    Called once the first frames are in, so this is the stream's time to first token.
    """
    response = web.StreamResponse(headers={**SSE_HEADERS, **headers} if headers else SSE_HEADERS)
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


class Placed(NamedTuple):
    """Where a token's text begins and ends in the text of its answer (character offsets), and
    how many bytes of the character before ``end`` are still to come from the next tokens."""

    start: int
    end: int
    owed: int


def _lost_text(text: str, at: int, char: str) -> int:
    """Where ``char`` shows in ``text`` from ``at`` past what a token's own decoding lost there:
    whitespace (SentencePiece drops a token's leading space) and at most one split character;
    ``at`` when it does not show there."""
    end = at
    while end < len(text) and text[end] != char and text[end].isspace():
        end += 1
    if end < len(text) and text[end] != char and not text[end].isascii():
        end += 1
    return end + 1 if end < len(text) and text[end] == char else at


def place_token(token: str, text: str, after: Placed) -> Placed:
    """Where ``token`` sits in ``text``, the previous token ``after`` placed.

    Workers send each token decoded on its own (FastChat's HF worker), so a character whose
    UTF-8 bytes are split across tokens shows whole in the text but as U+FFFD in the tokens:
    one for each continuation byte, one for the bytes that begin it. The character belongs to
    the token where it begins (counted as one byte, as with byte-fallback vocabularies), and
    the U+FFFD of the tokens that continue it take no room. Text a token's decoding lost (a
    leading space) belongs to it; a token absent from the text (a special token the text
    skips) takes no room. Offsets never decrease and never pass the end of ``text``.
    """
    at, owed = after.end, after.owed
    for char in token:
        if char == _REPLACEMENT and owed:
            owed -= 1
        elif at < len(text) and text[at] == char:
            at, owed = at + 1, 0
        elif char == _REPLACEMENT:
            if at < len(text) and not text[at].isascii():
                at, owed = at + 1, len(text[at].encode("utf-8", "surrogatepass")) - 1
        else:
            at, owed = _lost_text(text, at, char), 0
    return Placed(after.end, at, owed)


START = Placed(0, 0, False)


def _tokens(frame: dict[str, Any], first: int) -> list[str]:
    """The token strings of a worker frame's cumulative log-probabilities from ``first`` on;
    none without them."""
    logprobs = frame.get("logprobs")
    tokens = logprobs.get("tokens") if isinstance(logprobs, dict) else None
    if not isinstance(tokens, list):
        return []
    return [token if isinstance(token, str) else "" for token in tokens[first:]]


class Delta(NamedTuple):
    """What one chunk of a choice carries: its new text, and the worker's tokens
    ``first_token`` up to ``first_token + len(offsets)``, each with where it begins in the
    choice's whole text (the next one's start, or ``end``, is where it ends)."""

    text: str
    first_token: int
    offsets: list[int]
    end: int = 0  # where the last token carried ends


def tokens_before(frame: dict[str, Any], end: int) -> int:
    """How many of a frame's tokens begin before character ``end`` of its text (placed as
    :func:`place_token` places them): those that make up ``text[:end]`` when it is cut there,
    one running past the cut included."""
    text, placed, count = frame.get("text", ""), START, 0
    for token in _tokens(frame, 0):
        placed = place_token(token, text, placed)
        if placed.start >= end:
            break
        count += 1
    return count


class Cursor:
    """One choice's place in its worker's cumulative frames, where the text sent is the only
    cursor.

    Each chunk carries the new text (a trailing half character held back, see
    :class:`TextDelta`) and exactly the tokens that this text completes; a token whose text is
    held back waits for the chunk that sends it, and the last chunk carries the rest. A
    token's offset indexes the text sent (see :func:`place_token`). A whole answer is the
    final frame of a stream, so the chunks of a stream carry the tokens and offsets of the
    same answer not streamed.
    """

    __slots__ = ("text", "tokens", "placed")

    def __init__(self) -> None:
        self.text = TextDelta()
        self.tokens = 0
        self.placed = START  # where the last token sent ends

    def __call__(self, frame: dict[str, Any], final: bool) -> Delta:
        text = frame.get("text", "")
        delta, first, offsets = self.text(text, final), self.tokens, []
        for token in _tokens(frame, first):
            placed = place_token(token, text, self.placed)
            if placed.end > self.text.sent:
                break
            offsets.append(placed.start)
            self.placed = placed
        self.tokens += len(offsets)
        return Delta(delta, first, offsets, self.placed.end)


# (choice index, what the chunk carries, the frame it came from, whether the choice ends here)
Chunk = Callable[[int, Delta, dict[str, Any], bool], bytes]


async def _chain(first: dict[str, Any], rest: Frames) -> Frames:
    yield first
    async for frame in rest:
        yield frame


async def first_frames(streams: Sequence[Frames]) -> tuple[list[dict[str, Any]], list[Frames]]:
    """Wait for every stream's first frame; if any fails or is empty, close all and raise.
    The first frames, and the whole streams (their first frames included). One stream (the
    usual ``n = 1``) is read in place, without a task (7.1 against 9.0 µs)."""
    tasks = [asyncio.ensure_future(anext(stream, None)) for stream in streams] if len(streams) > 1 else []
    try:
        firsts = await asyncio.gather(*tasks) if tasks else [await anext(streams[0], None)]
        present = [first for first in firsts if first is not None]
        if len(present) < len(firsts):
            raise errors.upstream_failed("The worker closed the stream without sending a frame")
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(stream.aclose() for stream in streams), return_exceptions=True)
        raise
    return present, [_chain(first, stream) for first, stream in zip(present, streams)]


async def interleave(streams: Sequence[Frames]) -> AsyncIterator[tuple[int, dict[str, Any], bool]]:
    """``(index, frame, more)`` from several streams as frames arrive, ``more`` telling whether
    more frames (or the end) have already arrived behind it; the first error ends all."""
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
                yield index, item, not queue.empty()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def relay(response: web.StreamResponse, streams: Sequence[Frames], chunk: Chunk,
                prelude: bytes = b"") -> tuple[list[dict[str, Any]], bytes]:
    """Write each choice's new text and tokens as they come (see :class:`Cursor`), and its end
    when it ends; the last frames, and the events not written yet (the last ones, for the
    caller to send with its own).

    The events of the frames that arrived together (one read from the worker often holds many)
    go out in one write, ``prelude`` with the first: one system call instead of one per event,
    and no event waits for a frame still to come. Events held when a stream fails are written
    before the error is raised.

    A choice whose worker stops without a finish reason (e.g. sglang's) is ended afterwards
    with its last frame, the text and tokens held back so far included.
    """
    count = len(streams)
    cursors = [Cursor() for _ in range(count)]
    lasts: list[dict[str, Any]] = [{} for _ in range(count)]
    finished = [False] * count
    held = [prelude] if prelude else []
    try:
        async for index, frame, more in interleave(streams):
            lasts[index] = frame
            finished[index] = frame.get("finish_reason") is not None
            delta = cursors[index](frame, finished[index])
            if delta.text or delta.offsets or finished[index]:
                held.append(chunk(index, delta, frame, finished[index]))
            if held and not more:
                await response.write(b"".join(held))
                held.clear()
    except Exception:
        if held:
            await response.write(b"".join(held))
        raise
    for index in range(count):
        if not finished[index]:
            held.append(chunk(index, cursors[index](lasts[index], True), lasts[index], True))
    return lasts, b"".join(held)
