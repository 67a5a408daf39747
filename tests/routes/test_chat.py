"""``POST /v1/chat/completions`` against the scripted stand-in: what goes up, what comes back."""

from __future__ import annotations

import pytest

from devstack.standin import StandIn

from ..support import CHAT, read_events, streamed_text


async def test_chat_answers_with_worker_text_and_usage(client, fake):
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"] == [{
        "index": 0,
        "message": {"role": "assistant", "content": "Hello there, friend!", "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }]
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


async def test_chat_sends_fastchat_gen_params(client, fake):
    await client.post("/v1/chat/completions", json=CHAT | {"stop": "###", "max_tokens": 50})
    (params,) = fake.sent("/worker_generate")
    assert list(params) == [
        "model", "prompt", "temperature", "logprobs", "top_p", "top_k", "presence_penalty",
        "frequency_penalty", "max_new_tokens", "echo", "stop_token_ids", "stop",
    ]
    assert params["prompt"].endswith("USER: Hi ASSISTANT:")
    assert params["temperature"] == 0.7
    assert params["max_new_tokens"] == 50
    assert params["stop"] == ["###"]
    assert params["echo"] is False


async def test_max_tokens_is_clamped_to_the_room_left(client, fake):
    fake.context_length, fake.prompt_tokens = 100, 90
    await client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 50})
    await client.post("/v1/chat/completions", json=CHAT)
    assert [p["max_new_tokens"] for p in fake.sent("/worker_generate")] == [10, 10]


async def test_max_completion_tokens_wins_over_max_tokens(client, fake):
    await client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 50, "max_completion_tokens": 7})
    assert fake.sent("/worker_generate")[0]["max_new_tokens"] == 7


async def test_context_overflow_is_a_400_with_fastchat_code(client, fake):
    fake.context_length, fake.prompt_tokens = 100, 100
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == 40303
    assert body["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 100 tokens" in body["error"]["message"]


async def test_n_choices_are_generated_concurrently(client, fake):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"n": 3})
    body = await resp.json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert len(fake.sent("/worker_generate")) == 3
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22}


async def test_stream_relays_deltas_role_first_and_done_last(client, fake):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    chunks = await read_events(resp)
    assert len(chunks) == 6  # the role, four pieces, the finish
    assert all(c["object"] == "chat.completion.chunk" and c["created"] and c["id"] == chunks[0]["id"]
               for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert streamed_text(chunks) == "Hello there, friend!"
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"


async def test_stream_include_usage_ends_with_usage_chunk(client, fake):
    resp = await client.post("/v1/chat/completions",
                             json=CHAT | {"stream": True, "stream_options": {"include_usage": True}})
    *chunks, last = await read_events(resp)
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
    assert streamed_text(chunks) == "Hello there, friend!"
    assert all(c["usage"] is None for c in chunks)


async def test_stream_n2_each_choice_finishes(client, fake):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True, "n": 2})
    chunks = await read_events(resp)
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert mine, f"no chunk of choice {index}"
        assert mine[0]["delta"]["role"] == "assistant"
        assert streamed_text(chunks, index) == "Hello there, friend!"
        assert mine[-1]["finish_reason"] == "stop"


async def test_worker_error_mid_stream_is_an_error_event(client, fake):
    fake.error_frame = {"text": "CUDA out of memory", "error_code": 50002}
    fake.error_after = 2
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert resp.status == 200
    *chunks, error = await read_events(resp)
    assert streamed_text(chunks) == "Hello there"  # the two pieces before the error
    assert error["error"]["message"].startswith(
        "The worker failed with FastChat error code 50002 (CUDA_OUT_OF_MEMORY)")
    assert error["error"]["fastchat_code"] == 50002


async def test_worker_error_before_first_frame_is_an_http_error(client, fake):
    fake.error_frame = {"text": "boom", "error_code": 50001}
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert resp.status == 502
    body = await resp.json()
    assert "error code 50001" in body["error"]["message"] and body["code"] == 50001


async def test_worker_http_failure_is_a_502(client, fake):
    fake.generate_status = 500
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 502
    assert (await resp.json())["error"]["type"] == "server_error"


async def test_unknown_model_is_a_404_with_40301(client, fake):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"model": "nope"})
    assert resp.status == 404
    body = await resp.json()
    assert body["code"] == 40301
    assert body["message"] == "Only fake-model allowed now, your model nope"
    assert body["error"]["param"] == "model"


async def test_no_worker_is_a_503_with_retry_after(client, fake):
    fake.address = ""  # the controller lists the model but has no address to give
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    assert "No available worker for fake-model" in (await resp.json())["error"]["message"]


async def test_no_count_round_trip_when_the_prompt_provably_fits(client, fake):
    await client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 20})
    assert fake.sent("/count_token") == []
    assert fake.sent("/worker_generate")[0]["max_new_tokens"] == 20
    await client.post("/v1/chat/completions", json=CHAT)  # "all the room left" needs the count
    assert len(fake.sent("/count_token")) == 1


async def test_steady_state_makes_no_control_plane_calls(client, fake):
    for _ in range(3):
        assert (await client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 5})).status == 200
    paths = [entry["path"] for entry in fake.requests]
    assert paths.count("/get_worker_address") == 1
    assert paths.count("/worker_get_conv_template") == 1
    assert paths.count("/worker_generate") == 3


@pytest.fixture
async def second_worker(aiohttp_server, fake):
    """Another worker of the same model; the controller (``fake``) hands out both in turn."""
    other = StandIn()
    server = await aiohttp_server(other.app())
    other.address = str(server.make_url("")).rstrip("/")
    fake.dispatch = [fake.address, other.address]
    return other


@pytest.mark.parametrize("stream", [False, True])
async def test_a_failing_worker_is_retried_once_on_another(client, fake, second_worker, stream):
    fake.generate_status = fake.stream_status = 500
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": stream})
    assert resp.status == 200
    body = await resp.read()
    assert b"Hello there, friend!" in body or b"friend" in body
    path = "/worker_generate_stream" if stream else "/worker_generate"
    assert len(fake.sent(path)) == 1 and len(second_worker.sent(path)) == 1
    # the failed worker is no longer routed to
    await client.post("/v1/chat/completions", json=CHAT)
    assert len(second_worker.sent("/worker_generate")) == 1 + (not stream)


async def test_an_unreachable_worker_is_retried_on_another(client, fake, second_worker):
    fake.dispatch = ["http://127.0.0.1:9", second_worker.address]
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 200
