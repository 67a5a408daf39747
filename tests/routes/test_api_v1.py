"""FastChat's ``/api/v1/token_check`` and ``/api/v1/chat/completions`` against the stand-in."""

from __future__ import annotations

from ..support import CHAT, read_events, streamed_text


async def test_token_check_says_what_fits(client, fake):
    fake.context_length = 100
    fake.token_counts = {"long": 90}
    resp = await client.post("/api/v1/token_check", json={"prompts": [
        {"model": "fake-model", "prompt": "short", "max_tokens": 90},
        {"model": "fake-model", "prompt": "long", "max_tokens": 10},
        {"model": "fake-model", "prompt": "long", "max_tokens": 11},
    ]})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"prompts": [
        {"fits": True, "tokenCount": 10, "contextLength": 100},
        {"fits": True, "tokenCount": 90, "contextLength": 100},
        {"fits": False, "tokenCount": 90, "contextLength": 100},
    ]}
    assert sorted(b["prompt"] for b in fake.sent("/count_token")) == ["long", "long", "short"]


async def test_token_check_refuses_bad_items_and_unknown_models(client, fake):
    resp = await client.post("/api/v1/token_check", json={"prompts": [{"model": "fake-model", "prompt": "x"}]})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "prompts[0].max_tokens"
    resp = await client.post("/api/v1/token_check", json={"prompts": [
        {"model": "nope", "prompt": "x", "max_tokens": 1}]})
    assert resp.status == 404


async def test_token_check_of_nothing_is_nothing(client, fake):
    resp = await client.post("/api/v1/token_check", json={"prompts": []})
    assert await resp.json() == {"prompts": []}


async def test_api_chat_always_forwards_repetition_penalty(client, fake):
    resp = await client.post("/api/v1/chat/completions", json=CHAT)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "Hello there, friend!"
    await client.post("/api/v1/chat/completions", json=CHAT | {"repetition_penalty": 1.3})
    await client.post("/api/v1/chat/completions", json=CHAT | {"repetition_penalty": None})
    sent = fake.sent("/worker_generate")
    assert [p["repetition_penalty"] for p in sent] == [1.0, 1.3, 1.0]
    assert sent[0]["prompt"].endswith("USER: Hi ASSISTANT:")  # the chat template ran


async def test_api_chat_streams_like_chat(client, fake):
    resp = await client.post("/api/v1/chat/completions", json=CHAT | {"stream": True, "repetition_penalty": 1.1})
    chunks = await read_events(resp)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert streamed_text(chunks) == "Hello there, friend!"
    assert fake.sent("/worker_generate_stream")[0]["repetition_penalty"] == 1.1


async def test_api_v1_routes_need_a_key_when_protected(make_client, fake):
    keyed = await make_client(auth={"api_keys": ["sk-one"]})
    for path, body in (("/api/v1/chat/completions", CHAT), ("/api/v1/token_check", {"prompts": []})):
        assert (await keyed.post(path, json=body)).status == 401
        ok = await keyed.post(path, json=body, headers={"Authorization": "Bearer sk-one"})
        assert ok.status == 200
    open_ = await make_client(auth={"api_keys": ["sk-one"], "protect_api_v1": False})
    assert (await open_.post("/api/v1/chat/completions", json=CHAT)).status == 200
