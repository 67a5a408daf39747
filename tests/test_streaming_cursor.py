"""Stream chunks and their tokens: the text sent is the only cursor (``streaming.Cursor``).

Workers send cumulative frames whose tokens are decoded one by one, so a character whose
UTF-8 bytes are split across tokens shows as U+FFFD in each of those tokens, and as U+FFFD at
the end of a frame's text until the next frame completes it.
"""

from __future__ import annotations

import pytest

from fastchat_api.responses import completion_logprobs
from fastchat_api.streaming import Cursor

from .support import sse_events

R = "\ufffd"


def frame(text: str, tokens: list[str], finish: str | None = None) -> dict:
    """A worker frame with cumulative logprobs (the worker's own offsets, a running sum of
    token lengths, on purpose left as it sends them)."""
    offsets = [sum(len(t) for t in tokens[:k]) for k in range(len(tokens))]
    return {"text": text, "error_code": 0, "finish_reason": finish, "logprobs": {
        "tokens": tokens, "token_logprobs": [-1.0 - k for k in range(len(tokens))],
        "top_logprobs": [{}] * len(tokens), "text_offset": offsets}}


# "café is good": é (C3 A9) split between the token ending in C3 and the one starting with A9.
CAFE = [
    frame(f"caf{R}", ["ca", "f", R]),
    frame("café is", ["ca", "f", R, f"{R} is"]),
    frame("café is good", ["ca", "f", R, f"{R} is", " good"], "stop"),
]
# "a…b": … (E2 80 A6) in three tokens of one byte each, over three frames.
ELLIPSIS = [
    frame(f"a{R}", ["a", R]),
    frame(f"a{R}", ["a", R, R]),
    frame("a…b", ["a", R, R, R, "b"], "length"),
]
# A byte that never becomes a character: U+FFFD at the end is held back, then sent as text.
ORPHAN = [
    frame(R, [R]),
    frame(f"{R} 1944", [R, " 1944"], "length"),
]


def chunks(frames: list[dict]) -> list[tuple[str, list[str], list[int]]]:
    """What a stream of ``frames`` sends: each chunk's text, tokens and offsets."""
    cursor, sent = Cursor(), []
    for item in frames:
        delta = cursor(item, item["finish_reason"] is not None)
        sent.append((delta.text, item["logprobs"]["tokens"][delta.first_token:][: len(delta.offsets)],
                     delta.offsets))
    return sent


def test_a_split_character_keeps_its_tokens_with_its_text():
    assert chunks(CAFE) == [
        ("caf", ["ca", "f"], [0, 2]),
        ("é is", [R, f"{R} is"], [3, 4]),
        (" good", [" good"], [7]),
    ]


def test_a_character_in_three_tokens_waits_for_the_last():
    assert chunks(ELLIPSIS) == [("a", ["a"], [0]), ("", [], []), ("…b", [R, R, R, "b"], [1, 2, 2, 2])]


def test_a_replacement_character_that_stays_is_sent_with_its_token():
    assert chunks(ORPHAN) == [("", [], []), (f"{R} 1944", [R, " 1944"], [0, 1])]


@pytest.mark.parametrize("frames", [CAFE, ELLIPSIS, ORPHAN])
def test_the_chunks_add_up_to_the_whole_answer(frames):
    """Every offset indexes text already sent, and the chunks together carry the logprobs of
    the same answer given whole."""
    sent_text, tokens, offsets, logprobs = "", [], [], []
    cursor = Cursor()
    for item in frames:
        delta = cursor(item, item["finish_reason"] is not None)
        sent_text += delta.text
        assert all(offset <= len(sent_text) for offset in delta.offsets)
        part = completion_logprobs(item, delta)
        tokens += part["tokens"]
        offsets += part["text_offset"]
        logprobs += part["token_logprobs"]
    whole = completion_logprobs(frames[-1])
    assert sent_text == frames[-1]["text"]
    assert (tokens, logprobs, offsets) == (whole["tokens"], whole["token_logprobs"], whole["text_offset"])


@pytest.mark.parametrize(("text", "tokens", "offsets"), [
    ("Hello there", ["Hello", " there"], [0, 5]),
    # SentencePiece decodes a token alone without its leading space: the space is the token's
    ("Once upon a time", ["Once", "upon", "a", "time"], [0, 4, 9, 11]),
    # the text skips special tokens; they take no room
    ("Hi there", ["<s>", "Hi", " there", "</s>"], [0, 0, 2, 8]),
    # two split characters in a row, the second begun in the token that ends the first
    ("Пр!", [R, f"{R}{R}", R, "!"], [0, 1, 2, 2]),
    # one byte a token (byte-fallback vocabularies): Cyrillic, two bytes a character
    ("Пр", [R, R, R, R], [0, 1, 1, 2]),
    # a token that holds the first two bytes of 日 (E6 97), the next its last (A5)
    ("日本x", [R, R, "本", "x"], [0, 1, 1, 2]),
    ("", ["</s>"], [0]),
])
def test_offsets_index_the_text(text, tokens, offsets):
    assert completion_logprobs(frame(text, tokens, "stop"))["text_offset"] == offsets


def test_a_frame_of_tokens_without_text_still_sends_them():
    cursor = Cursor()
    assert cursor(frame("Hi", ["Hi"]), False).offsets == [0]
    delta = cursor(frame("Hi", ["Hi", "</s>"]), False)
    assert (delta.text, delta.first_token, delta.offsets) == ("", 1, [2])


async def test_a_completion_stream_sends_a_split_character_with_its_tokens(client, fake):
    fake.script = CAFE
    resp = await client.post("/v1/completions", json={
        "model": "fake-model", "prompt": "x", "logprobs": 1, "stream": True})
    events = sse_events(await resp.read())
    sent = [(c["choices"][0]["text"], c["choices"][0]["logprobs"]["tokens"],
             c["choices"][0]["logprobs"]["text_offset"]) for c in events]
    assert sent == [("caf", ["ca", "f"], [0, 2]), ("é is", [R, f"{R} is"], [3, 4]),
                    (" good", [" good"], [7])]
    assert events[0]["choices"][0]["logprobs"]["token_logprobs"] == [-1.0, -2.0]
    whole = await (await client.post("/v1/completions", json={
        "model": "fake-model", "prompt": "x", "logprobs": 1})).json()
    assert whole["choices"][0]["logprobs"]["text_offset"] == [0, 2, 3, 4, 7]


async def test_a_stream_ended_without_a_finish_reason_flushes_the_held_tokens(client, fake):
    fake.script = CAFE[:1]  # the worker stops mid-character (sglang's never say why)
    resp = await client.post("/v1/completions", json={
        "model": "fake-model", "prompt": "x", "logprobs": 1, "stream": True})
    events = sse_events(await resp.read())
    assert [(c["choices"][0]["text"], c["choices"][0]["logprobs"]["tokens"]) for c in events] == [
        ("caf", ["ca", "f"]), (R, [R])]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
