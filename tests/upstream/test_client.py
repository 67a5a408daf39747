"""The transport: a worker's stream frames are bounded by ``upstream.max_frame_size``, so a
worker sending a huge (or endless) frame costs a 502 or an in-band error, not the gateway's
memory."""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiohttp import web

from fastchat_api import errors, jsonutil
from fastchat_api.config import build_config
from fastchat_api.upstream import create_session
from fastchat_api.upstream import client as client_module
from fastchat_api.upstream.client import UpstreamClient

from ..support import CHAT, HANG_GUARD, read_events, streamed_text

LIMIT = 1024  # bytes; the stand-in's usual frames are a fifth of that


@pytest.fixture
async def bounded(make_client):
    return await make_client(upstream={"max_frame_size": LIMIT})


async def test_frames_under_the_limit_pass(bounded, fake):
    resp = await bounded.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert streamed_text(await read_events(resp)) == "Hello there, friend!"


@pytest.mark.parametrize("size", [4 * LIMIT, 1024 * LIMIT], ids=["one-read", "many-reads"])
async def test_a_first_frame_over_the_limit_is_a_502(bounded, fake, size):
    """A 4 KiB frame arrives in one read, a 1 MiB one in many: both are refused."""
    fake.pieces = ["x" * size]
    resp = await bounded.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert resp.status == 502
    assert "over the size limit" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("size", [4 * LIMIT, 1024 * LIMIT], ids=["one-read", "many-reads"])
async def test_a_frame_over_the_limit_mid_stream_is_an_error_event(bounded, fake, size):
    fake.pieces = ["Hello", "x" * size]
    resp = await bounded.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert resp.status == 200
    *chunks, error = await read_events(resp)
    assert streamed_text(chunks) == "Hello"
    assert "over the size limit" in error["error"]["message"]


async def test_an_endless_frame_is_refused_once_past_the_limit(aiohttp_server):
    """A worker that sends bytes and never a NUL is cut off, not buffered without end."""
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        while True:  # until the gateway hangs up
            await response.write(b"x" * LIMIT)

    worker = web.Application()
    worker.router.add_post("/worker_generate_stream", endless)
    address = str((await aiohttp_server(worker)).make_url("")).rstrip("/")
    config = build_config(None, {"upstream": {"max_frame_size": LIMIT}}).upstream
    async with create_session(config) as session:
        client = UpstreamClient(session, config, "http://controller", on_worker_failure=lambda _: None)
        with pytest.raises(errors.APIError, match="over the size limit") as caught:
            async with asyncio.timeout(HANG_GUARD):
                async for _ in client.generate_stream(address, {}):
                    pass
    assert caught.value.status == 502


@pytest.mark.parametrize(("call", "answer"), [
    ("conv_template", {}),
    ("context_length", {"context_length": "lots"}),
    ("count_tokens", {"error_code": 0}),
])
async def test_a_worker_answer_without_its_field_is_a_502_naming_it(aiohttp_server, call, answer):
    """A broken worker is the worker's fault: a 502 saying which field, never a 500."""
    async def reply(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/{route}", reply)
    worker = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    config = build_config(None)
    async with create_session(config.upstream) as session:
        client = UpstreamClient(session, config.upstream, "http://127.0.0.1:9", lambda _: None)
        args = (worker, "m", "prompt") if call == "count_tokens" else (worker, "m")
        with pytest.raises(errors.APIError) as caught:
            await getattr(client, call)(*args)
    assert caught.value.status == 502
    field = {"conv_template": "conv", "context_length": "context_length", "count_tokens": "count"}[call]
    assert f"'{field}'" in caught.value.message


async def test_out_of_gpu_memory_is_a_503_clients_retry_later(client, fake):
    fake.error_frame = {"text": "CUDA out of memory", "error_code": 50002}
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"


async def test_a_stream_does_not_hold_the_json_it_sent_the_worker(client, fake, monkeypatch):
    """orjson's bytes take 4 KiB however short: held for a stream's life, 4 MB per 1,000 streams."""
    freed: list[bool] = []

    class Sent(bytes):
        def __del__(self) -> None:
            freed.append(True)

    def dumps(obj: object) -> bytes:  # the generation's parameters tracked, not control calls'
        sent = jsonutil.dumps(obj)
        return Sent(sent) if isinstance(obj, dict) and "max_new_tokens" in obj else sent

    monkeypatch.setattr(client_module, "dumps", dumps)
    fake.stall, fake.stall_after = 30.0, 2  # the stream waits, open, after its second frame
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True})
    async with asyncio.timeout(HANG_GUARD):
        await resp.content.readuntil(b"\n\n")  # the stream is open
        while not freed:
            gc.collect()
            await asyncio.sleep(0.01)
    assert not resp.content.at_eof()
    resp.close()
