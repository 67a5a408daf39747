"""Chat log-probabilities against the scripted stand-in: forwarded to the worker, answered in
OpenAI's chat shape whole and streamed (each chunk's tokens adding up to its text), and the
headers that say when the worker gave less than asked."""

from __future__ import annotations

import pytest

from fastchat_api.responses import chat_logprobs
from fastchat_api.streaming import Cursor

from .support.openai_spec import validate
from .support import CHAT, read_events, streamed_text, with_text


async def post(client, **fields):
    return await client.post("/v1/chat/completions", json=CHAT | fields)


async def test_logprobs_are_asked_of_the_worker_with_the_alternatives_wanted(client, fake):
    await post(client, logprobs=True, top_logprobs=5)
    await post(client, logprobs=True)
    await post(client, top_logprobs=5)  # without logprobs: nothing asked, nothing answered
    assert [params["logprobs"] for params in fake.sent("/worker_generate")] == [5, 0, None]


async def test_a_whole_answer_carries_each_tokens_logprob_in_openais_shape(client, fake):
    resp = await post(client, logprobs=True, top_logprobs=2)
    assert resp.status == 200
    body = await resp.json()
    validate("CreateChatCompletionResponse", body)
    (choice,) = body["choices"]
    content = choice["logprobs"]["content"]
    assert [entry["token"] for entry in content] == ["Hello", " there", ", friend", "!"]
    assert [entry["logprob"] for entry in content] == [-0.5, -1.0, -1.5, -2.0]
    assert content[1]["bytes"] == list(b" there") and choice["logprobs"]["refusal"] is None
    assert "".join(entry["token"] for entry in content) == choice["message"]["content"]
    # The stand-in, as FastChat's HF worker, gives no alternatives: the client is told.
    assert all(entry["top_logprobs"] == [] for entry in content)
    assert resp.headers["X-Top-Logprobs"] == "0" and "X-Logprobs" not in resp.headers


async def test_without_logprobs_the_answer_has_none_and_no_header(client):
    resp = await post(client)
    assert (await resp.json())["choices"][0]["logprobs"] is None
    assert "X-Top-Logprobs" not in resp.headers and "X-Logprobs" not in resp.headers
    resp = await post(client, logprobs=True)  # top_logprobs 0: nothing fewer than asked
    assert "X-Top-Logprobs" not in resp.headers


async def test_each_streamed_chunk_carries_exactly_the_tokens_of_its_text(client, fake):
    resp = await post(client, logprobs=True, top_logprobs=3, stream=True)
    assert resp.headers["X-Top-Logprobs"] == "0"
    events = await read_events(resp)
    for chunk in events:
        validate("CreateChatCompletionStreamResponse", chunk)
    texts = with_text(events)
    assert texts
    for chunk in texts:
        (choice,) = chunk["choices"]
        assert "".join(e["token"] for e in choice["logprobs"]["content"]) == choice["delta"]["content"]
    assert streamed_text(events) == "Hello there, friend!"


async def test_a_worker_without_logprobs_is_said_to_have_none(client, fake):
    """A vLLM worker sends no logprobs: null, and ``X-Logprobs: unavailable``, whole and streamed."""
    fake.script = [{"text": "Hi", "error_code": 0, "finish_reason": None},
                   {"text": "Hi!", "error_code": 0, "finish_reason": "stop"}]
    resp = await post(client, logprobs=True, top_logprobs=2)
    assert resp.headers["X-Logprobs"] == "unavailable" and "X-Top-Logprobs" not in resp.headers
    assert (await resp.json())["choices"][0]["logprobs"] is None
    resp = await post(client, logprobs=True, stream=True)
    assert resp.headers["X-Logprobs"] == "unavailable"
    assert all(c["choices"][0]["logprobs"] is None for c in await read_events(resp) if c["choices"])


def test_alternatives_are_the_likeliest_first_as_many_as_asked():
    frame = {"text": "ab", "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-0.1, None],
                                         "top_logprobs": [{"x": -3.0, "a": -0.1, "y": -2.0}, {}]}}
    content = chat_logprobs(frame, 2)["content"]
    assert [(alt["token"], alt["logprob"]) for alt in content[0]["top_logprobs"]] == [("a", -0.1), ("y", -2.0)]
    assert content[1]["logprob"] == -9999.0  # a logprob the worker did not give


@pytest.mark.parametrize(("text", "tokens"), [
    ("é!", ["\ufffd", "\ufffd", "!"]),  # a character split across two tokens
    ("Hi", ["Hi", "</s>"]),  # a special token the text skips
    (" Hello world", ["Hello", "world"]),  # SentencePiece's lost leading spaces
])
def test_tokens_add_up_to_the_text_whatever_the_worker_decoded(text, tokens):
    frame = {"text": text, "logprobs": {"tokens": tokens, "token_logprobs": [-1.0] * len(tokens),
                                        "top_logprobs": [{}] * len(tokens)}}
    content = chat_logprobs(frame, 0)["content"]
    assert len(content) == len(tokens)
    assert "".join(entry["token"] for entry in content) == text
    assert b"".join(bytes(entry["bytes"]) for entry in content) == text.encode()
    # Streamed one frame per token, the chunks carry the same entries.
    cursor, streamed = Cursor(), []
    for count in range(1, len(tokens) + 1):
        partial = {"text": text, "logprobs": {key: value[:count] for key, value in frame["logprobs"].items()}}
        streamed += chat_logprobs(partial, 0, cursor(partial, count == len(tokens)))["content"]
    assert streamed == content


async def test_logprobs_of_a_json_answer_cover_what_the_worker_wrote_up_to_the_cut(client, fake):
    fake.pieces = ['"a"', ": 1}", " trailing"]
    resp = await post(client, logprobs=True, response_format={"type": "json_object"})
    (choice,) = (await resp.json())["choices"]
    assert choice["message"]["content"] == '{"a": 1}'
    tokens = [entry["token"] for entry in choice["logprobs"]["content"]]
    assert tokens == ['"a"', ": 1}"]  # the opening "{" was not generated: it has no logprob


async def test_browsers_may_read_the_logprobs_headers(client):
    resp = await client.post(
        "/v1/chat/completions", json=CHAT | {"logprobs": True, "top_logprobs": 1},
        headers={"Origin": "https://app.example"})
    assert resp.headers["X-Top-Logprobs"] == "0"
    exposed = resp.headers["Access-Control-Expose-Headers"]
    assert "X-Top-Logprobs" in exposed and "X-Logprobs" in exposed
