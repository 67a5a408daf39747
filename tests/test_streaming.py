"""The relay between workers and a client: text deltas with U+FFFD held back, every choice's first
frame before the 200, choices interleaved, and every other generation stopped when one fails."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from fastchat_api import errors
from fastchat_api.streaming import Delta, TextDelta, first_frames, interleave, relay

from .support import CHAT, COMPLETION, HANG_GUARD, read_events, streamed_text

HOLD = "\ufffd"  # what a worker's detokenizer shows for half a multi-byte character


def frame(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"text": text, "error_code": 0, "finish_reason": finish}


async def frames(*items: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


class Ends:
    """Streams that record how they ended: a stream left suspended records nothing."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    async def waiting(self, name: str, *first: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Sends ``first`` (if any), then waits for a frame that never comes."""
        try:
            for item in first:
                yield item
            await asyncio.Event().wait()
            yield frame("never")
        finally:
            self.ended.append(name)

    @staticmethod
    async def failing(*before: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        for item in before:
            yield item
        await asyncio.sleep(0)  # the other streams are waiting by now
        raise errors.upstream_failed("The worker failed")


class Written:
    """A stand-in for the client's response: the chunks relayed, as (index, text, final), and
    the writes they took."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, str, bool]] = []
        self.writes = 0

    async def write(self, data: bytes) -> None:
        self.writes += 1
        self.record(data)

    def record(self, data: bytes) -> None:
        for line in data.decode().splitlines():
            index, text, final = line.split("|")
            self.chunks.append((int(index), text, final == "end"))

    @staticmethod
    def chunk(index: int, delta: Delta, _frame: dict[str, Any], final: bool) -> bytes:
        return f"{index}|{delta.text}|{'end' if final else ''}\n".encode()


# -- TextDelta: U+FFFD held back ---------------------------------------------------------------


def test_a_trailing_replacement_character_waits_for_the_frame_that_completes_it():
    """Half a character is not sent as U+FFFD: the next frame has the whole character."""
    delta = TextDelta()
    assert delta("caf" + HOLD) == "caf"
    assert delta("café") == "é"
    assert delta("café " + HOLD + HOLD) == " "  # a four-byte character, half of it so far
    assert delta("café 🙂") == "🙂"
    assert delta("café 🙂", final=True) == ""


def test_a_legitimate_replacement_character_at_the_end_is_sent_when_the_choice_ends():
    """The last frame's U+FFFD can be completed by nothing: the model meant it."""
    delta = TextDelta()
    assert delta("bad byte: " + HOLD) == "bad byte: "
    assert delta("bad byte: " + HOLD) == ""
    assert delta("bad byte: " + HOLD, final=True) == HOLD


def test_replacement_characters_inside_the_text_are_sent_at_once():
    delta = TextDelta()
    assert delta("a" + HOLD + "b") == "a" + HOLD + "b"


async def test_relay_holds_the_half_character_back_and_ends_each_choice_with_what_it_held():
    """The second choice's worker (sglang) sends no finish reason: its held U+FFFD goes out
    with the finish the relay adds."""
    response = Written()
    streams = [
        frames(frame("caf" + HOLD), frame("café"), frame("café", "stop")),
        frames(frame("x" + HOLD), frame("x" + HOLD + HOLD)),
    ]
    _, held = await relay(response, streams, Written.chunk)
    response.record(held)
    assert [c for c in response.chunks if c[0] == 0] == [(0, "caf", False), (0, "é", False), (0, "", True)]
    assert [c for c in response.chunks if c[0] == 1] == [(1, "x", False), (1, HOLD + HOLD, True)]


async def test_relay_writes_the_events_of_frames_that_arrived_together_at_once():
    """Two frames in one read, then a pause: the prelude and both events are one write; the
    last event is handed back, for the caller to send with its usage and [DONE]."""
    async def two_then_one() -> AsyncIterator[dict[str, Any]]:
        yield frame("a")
        yield frame("ab")
        await asyncio.sleep(0)  # the worker's next frame is not there yet
        yield frame("abc", "stop")

    response = Written()
    _, held = await relay(response, [two_then_one()], Written.chunk, b"0|role|\n")
    assert response.writes == 1
    assert response.chunks == [(0, "role", False), (0, "a", False), (0, "b", False)]
    response.record(held)
    assert response.chunks[-1] == (0, "c", True)


async def test_relay_sends_each_event_without_waiting_for_the_next_frame():
    """A frame is written as soon as no other has arrived behind it."""
    response, more = Written(), asyncio.Event()

    async def one_then_wait() -> AsyncIterator[dict[str, Any]]:
        yield frame("a")
        await more.wait()
        yield frame("ab", "stop")

    task = asyncio.ensure_future(relay(response, [one_then_wait()], Written.chunk))
    async with asyncio.timeout(HANG_GUARD):
        while not response.chunks:
            await asyncio.sleep(0)
    assert response.chunks == [(0, "a", False)]
    more.set()
    _, held = await task
    response.record(held)
    assert response.chunks == [(0, "a", False), (0, "b", True)]


async def test_relay_writes_the_events_it_holds_before_a_failure_goes_out():
    """Frames that arrived with the worker's failure still reach the client, before the error."""
    async def two_then_failure() -> AsyncIterator[dict[str, Any]]:
        yield frame("a")
        yield frame("ab")
        raise errors.upstream_failed("The worker failed")

    response = Written()
    with pytest.raises(errors.APIError, match="The worker failed"):
        await relay(response, [two_then_failure()], Written.chunk)
    assert response.chunks == [(0, "a", False), (0, "b", False)]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/chat/completions", CHAT, "content"), ("/v1/completions", COMPLETION, "text")])
async def test_a_replacement_character_ending_the_answer_reaches_the_client(client, fake, path, body, field):
    fake.pieces = ["bad byte: ", HOLD]
    resp = await client.post(path, json=body | {"stream": True})
    chunks = await read_events(resp)
    assert streamed_text(chunks) == "bad byte: " + HOLD
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# -- first_frames: every choice's first frame, or none ------------------------------------------


async def test_first_frames_cancels_the_other_streams_when_one_fails():
    ends = Ends()
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(errors.APIError, match="The worker failed"):
            await first_frames([ends.waiting("a"), Ends.failing(), ends.waiting("b")])
    assert sorted(ends.ended) == ["a", "b"]


async def test_first_frames_closes_the_other_streams_when_one_is_empty():
    """The others have sent their first frame and wait at it: they are closed, not left open."""
    ends = Ends()
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(errors.APIError, match="without sending a frame"):
            await first_frames([ends.waiting("a", frame("A")), frames(), ends.waiting("b", frame("B"))])
    assert sorted(ends.ended) == ["a", "b"]


async def test_first_frames_of_one_stream_that_ends_empty_is_an_error():
    """``n = 1``, read in place: a worker that closes without a frame is still a 502."""
    with pytest.raises(errors.APIError, match="without sending a frame") as raised:
        await first_frames([frames()])
    assert raised.value.status == 502


async def test_first_frames_of_one_stream_closes_it_when_cancelled():
    """The client leaves while the one worker has not sent its first frame: the stream (and
    so the worker's request) is closed."""
    ends = Ends()
    task = asyncio.ensure_future(first_frames([ends.waiting("only")]))
    await asyncio.sleep(0)
    task.cancel()
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ends.ended == ["only"]


async def test_first_frames_hands_back_whole_streams():
    firsts, ready = await first_frames([frames(frame("a"), frame("ab", "stop")), frames(frame("c", "stop"))])
    assert [f["text"] for f in firsts] == ["a", "c"]
    assert [[f["text"] async for f in stream] for stream in ready] == [["a", "ab"], ["c"]]


# -- interleave: one failure ends every choice ---------------------------------------------------


async def test_interleave_cancels_the_other_streams_when_one_fails():
    ends = Ends()
    got = []
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(errors.APIError, match="The worker failed"):
            async for item in interleave([ends.waiting("a", frame("A")), Ends.failing(frame("B")),
                                          ends.waiting("c", frame("C"))]):
                got.append(item)
    assert sorted(index for index, _, _ in got) == [0, 1, 2]  # each first frame came through
    assert sorted(ends.ended) == ["a", "c"]


async def test_interleave_cancels_every_stream_when_the_client_leaves():
    """The consumer closing early (the client hung up) stops every worker's stream."""
    ends = Ends()
    merged = interleave([ends.waiting("a", frame("A")), ends.waiting("b", frame("B"))])
    async with asyncio.timeout(HANG_GUARD):
        await anext(merged)
        await merged.aclose()
    assert sorted(ends.ended) == ["a", "b"]
