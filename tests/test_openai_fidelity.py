"""OpenAI fidelity: every body validates against the OpenAI spec, and the official client
(async, against the test server) sees what it expects: classes of errors, streams, no retries."""

from __future__ import annotations

import json

import openai
import pytest

from .support.openai_spec import validate
from .support import CHAT, COMPLETION, MESSAGES, read_events, with_text


@pytest.fixture
async def async_openai(client):
    """The official async client against the gateway under test, with its default retries."""
    async with openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="EMPTY") as oa:
        yield oa


async def test_chat_completion_validates(client):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"n": 2})
    body = await resp.json()
    validate("CreateChatCompletionResponse", body)
    assert isinstance(body["system_fingerprint"], str)


@pytest.mark.parametrize("extra", [{}, {"n": 2}, {"stream_options": {"include_usage": True}}])
async def test_every_chunk_validates(client, extra):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True} | extra)
    chunks = await read_events(resp)
    assert len(with_text(chunks)) == 4 * extra.get("n", 1)  # not only the role and usage chunks
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)


async def test_models_validate(client):
    body = await (await client.get("/v1/models")).json()
    validate("ListModelsResponse", body)
    validate("Model", await (await client.get("/v1/models/fake-model")).json())


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/v1/chat/completions", CHAT | {"model": "nope"}),
        ("POST", "/v1/chat/completions", CHAT | {"temperature": 9}),
        ("POST", "/v1/chat/completions", {"model": "fake-model"}),
        ("GET", "/v1/nothing", None),
        ("DELETE", "/v1/models", None),
    ],
)
async def test_error_bodies_validate(client, method, path, payload):
    resp = await client.request(method, path, json=payload)
    assert resp.status >= 400
    validate("ErrorResponse", await resp.json())


async def test_error_event_validates_as_openai_error(client, fake):
    fake.error_frame, fake.error_after = {"text": "boom", "error_code": 50001}, 1
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True})
    *chunks, error_event = await read_events(resp)
    assert len(with_text(chunks)) == 1  # the piece before the error
    validate("ErrorResponse", error_event)


async def test_client_include_usage_stream(async_openai):
    stream = await async_openai.chat.completions.create(
        **CHAT, stream=True, stream_options={"include_usage": True})
    *chunks, last = [chunk async for chunk in stream]
    assert last.choices == []
    assert last.usage.total_tokens == 14
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello there, friend!"
    assert all(chunk.usage is None for chunk in chunks)


async def test_client_n3_stream_interleaves_and_completes(async_openai, fake):
    fake.delay = 0.01
    stream = await async_openai.chat.completions.create(**CHAT, stream=True, n=3)
    order, texts, finished = [], {0: "", 1: "", 2: ""}, {}
    async for chunk in stream:
        for choice in chunk.choices:
            order.append(choice.index)
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished[choice.index] = choice.finish_reason
    assert finished == {0: "stop", 1: "stop", 2: "stop"}
    assert set(texts.values()) == {"Hello there, friend!"}
    firsts = [order.index(i) for i in range(3)]
    lasts = [len(order) - 1 - order[::-1].index(i) for i in range(3)]
    assert max(firsts) < min(lasts), f"choices were sent one after another: {order}"


async def test_client_raises_api_error_mid_stream_without_retry(async_openai, fake):
    fake.error_frame, fake.error_after = {"text": "CUDA out of memory", "error_code": 50002}, 2
    stream = await async_openai.chat.completions.create(**CHAT, stream=True)
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert "error code 50002 (CUDA_OUT_OF_MEMORY)" in caught.value.message
    assert not isinstance(caught.value, openai.APIStatusError)
    assert len(fake.sent("/worker_generate_stream")) == 1


async def test_client_authentication_error(make_client):
    client = await make_client(auth={"api_keys": ["sk-right"]})
    async with openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="sk-wrong") as oa:
        with pytest.raises(openai.AuthenticationError):
            await oa.models.list()


async def test_client_not_found_and_bad_request_are_not_retried(async_openai, fake):
    with pytest.raises(openai.NotFoundError):
        await async_openai.chat.completions.create(model="nope", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError):
        await async_openai.chat.completions.create(**CHAT, temperature=3)
    assert fake.sent("/worker_generate") == []
    assert len(fake.sent("/get_worker_address")) == 0


async def test_request_id_reaches_the_client(async_openai):
    raw = await async_openai.chat.completions.with_raw_response.create(
        **CHAT, extra_headers={"X-Request-Id": "trace-7"})
    assert raw.headers["x-request-id"] == "trace-7"
    assert json.loads(raw.text)["object"] == "chat.completion"


def _as_final(chunk: dict) -> dict:
    """A completion chunk as OpenAI's schema describes it. The spec has one schema for whole
    answers and chunks, without the nulls OpenAI's own streams send (``finish_reason`` until a
    choice ends, ``usage`` before the last chunk with ``include_usage``), as ours do; only
    those two are relaxed."""
    relaxed = chunk | {"choices": [c | {"finish_reason": c["finish_reason"] or "stop"}
                                   for c in chunk["choices"]]}
    if relaxed.get("usage", {}) is None:
        del relaxed["usage"]
    return relaxed


@pytest.mark.parametrize("extra", [{}, {"n": 2, "prompt": ["a", "b"]},
                                   {"stream_options": {"include_usage": True}}])
async def test_every_completion_chunk_validates(client, extra):
    resp = await client.post("/v1/completions", json=COMPLETION | {"stream": True} | extra)
    chunks = await read_events(resp)
    assert len(with_text(chunks)) == 4 * len(extra.get("prompt", "x")) * extra.get("n", 1)
    for chunk in chunks:
        if chunk["choices"]:
            validate("CreateCompletionResponse", _as_final(chunk))
        else:
            assert set(chunk["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


async def test_completion_and_embedding_bodies_validate(client):
    body = await (await client.post("/v1/completions", json={
        "model": "fake-model", "prompt": ["a", "b"], "n": 2, "echo": True, "logprobs": 1})).json()
    validate("CreateCompletionResponse", body)
    for path in ("/v1/embeddings", "/v1/engines/fake-model/embeddings"):
        body = await (await client.post(path, json={
            "model": "fake-model", "input": ["a", "b", "c", "d", "e"], "encoding_format": "float"})).json()
        validate("CreateEmbeddingResponse", body)


async def test_api_v1_chat_validates_as_chat(client):
    body = await (await client.post("/api/v1/chat/completions", json=CHAT)).json()
    validate("CreateChatCompletionResponse", body)
    resp = await client.post("/api/v1/chat/completions", json=CHAT | {"stream": True})
    chunks = await read_events(resp)
    assert len(with_text(chunks)) == 4
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/completions", {"model": "fake-model", "prompt": "x", "guided_json": {}}),
        ("/v1/completions", {"model": "nope", "prompt": "x"}),
        ("/v1/embeddings", {"model": "fake-model", "input": "x", "dimensions": 8}),
        ("/v1/engines/nope/embeddings", {"input": "x"}),
        ("/api/v1/token_check", {"prompts": [{"model": "fake-model"}]}),
        ("/api/v1/chat/completions", {"model": "fake-model", "messages": [{"role": "tool", "content": "x"}]}),
    ],
)
async def test_error_bodies_of_every_route_validate(client, path, payload):
    resp = await client.post(path, json=payload)
    assert 400 <= resp.status < 500
    validate("ErrorResponse", await resp.json())
