"""``upstream.read_timeout``: a worker silent for longer is a 504 while nothing has been sent,
and an in-band error event once the stream has begun; the worker is not retried (a slow
worker would only make the client wait twice as long)."""

from __future__ import annotations

import pytest

from .support import CHAT, read_events, streamed_text


@pytest.fixture
async def impatient(make_client):
    return await make_client(upstream={"read_timeout": 0.2})


@pytest.mark.parametrize("stream", [False, True])
async def test_a_worker_silent_before_its_first_byte_is_a_504(impatient, fake, stream):
    fake.delay = 0.5
    resp = await impatient.post("/v1/chat/completions", json=CHAT | {"stream": stream})
    assert resp.status == 504
    body = await resp.json()
    assert body["error"]["code"] == "upstream_timeout" and body["code"] == 50006
    path = "/worker_generate_stream" if stream else "/worker_generate"
    assert len(fake.sent(path)) == 1


async def test_a_worker_silent_mid_stream_ends_it_with_an_error_event(impatient, fake):
    fake.stall, fake.stall_after = 0.5, 2
    resp = await impatient.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert resp.status == 200
    *chunks, error = await read_events(resp)
    assert error["error"]["code"] == "upstream_timeout"
    assert streamed_text(chunks) == "Hello there"
