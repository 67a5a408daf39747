"""bench.floor_proxy: the floor forwards a chat to the worker, whole or as a stream of its frames."""

from __future__ import annotations

from bench.floor_proxy import make_app


async def test_a_whole_chat_is_the_workers_one_answer(aiohttp_client, fake):
    client = await aiohttp_client(make_app(fake.address))
    resp = await client.post("/v1/chat/completions", json={
        "model": "fake-model", "messages": [{"role": "user", "content": "Hi"}]})
    answer = await resp.json()
    assert answer["choices"][0]["message"]["content"] == "".join(fake.pieces)
    assert fake.calls["/worker_generate"] == 1


async def test_a_stream_relays_each_worker_frame_as_one_event_then_done(aiohttp_client, fake):
    client = await aiohttp_client(make_app(fake.address))
    resp = await client.post("/v1/chat/completions", json={
        "model": "fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True})
    assert resp.headers["Content-Type"] == "text/event-stream"
    events = (await resp.text()).split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    frames = fake.frames()
    assert len(events) == len(frames) + 2
    assert all(event.startswith("data: {") for event in events[:-2])
