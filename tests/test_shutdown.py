"""Graceful shutdown, through aiohttp's own runner (what ``run_app`` and gunicorn call on
SIGTERM): in-flight requests finish within ``server.shutdown_timeout``, later ones end with a
last word, and nothing new is accepted."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from devstack.processes import find_free_port
from fastchat_api.app import create_app, runner_options
from fastchat_api.config import build_config

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
async def serve(fake):
    """Start the gateway as production does (``AppRunner`` + ``TCPSite``) with a grace period;
    the test stops it with ``runner.cleanup()``."""
    runners: list[web.AppRunner] = []

    async def start(grace: float) -> tuple[web.AppRunner, str]:
        config = build_config(None, {"controller": {"address": fake.address},
                                     "server": {"shutdown_timeout": grace},
                                     "logging": {"access_format": "off"}})
        runner = web.AppRunner(create_app(config), **runner_options(config))
        await runner.setup()
        port = find_free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return runner, f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def read_events(resp: aiohttp.ClientResponse) -> list[object]:
    """Every ``data:`` event of a whole SSE body (raises if the body is cut short)."""
    raw = (await resp.read()).decode()
    return [json.loads(d) if d != "[DONE]" else d
            for d in (block.removeprefix("data: ") for block in raw.split("\n\n")) if d]


async def test_streams_in_flight_finish_within_the_grace_period(serve, fake):
    fake.delay = 0.1  # five frames: half a second
    runner, url = await serve(grace=5)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}) as resp:
            assert resp.status == 200
            await resp.content.readuntil(b"\n\n")
            started = time.monotonic()
            stopping = asyncio.create_task(runner.cleanup())
            events = await read_events(resp)
        await stopping
    assert time.monotonic() - started < 2
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


async def test_a_stream_outliving_the_grace_period_ends_with_an_error_event(serve, fake):
    fake.delay = 1.0
    runner, url = await serve(grace=0.3)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}) as resp:
            await resp.content.readuntil(b"\n\n")
            started = time.monotonic()
            stopping = asyncio.create_task(runner.cleanup())
            events = await read_events(resp)  # a whole body: the chunked encoding is ended
        await stopping
    assert time.monotonic() - started < 2
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "server_shutting_down"
    assert events[-2]["error"]["type"] == "server_error"


async def test_a_request_outliving_the_grace_period_gets_a_503(serve, fake):
    fake.delay = 5.0
    runner, url = await serve(grace=0.3)
    async with aiohttp.ClientSession() as session:
        answer = asyncio.create_task(session.post(f"{url}/v1/chat/completions", json=CHAT))
        while not fake.sent("/worker_generate"):
            await asyncio.sleep(0.01)
        await runner.cleanup()
        resp = await answer
        body = await resp.json()
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert body["error"]["code"] == "server_shutting_down" and body["code"] == 50001


async def test_no_new_connection_is_accepted_once_shutdown_starts(serve, fake):
    fake.delay = 0.3
    runner, url = await serve(grace=5)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}) as resp:
            await resp.content.readuntil(b"\n\n")
            stopping = asyncio.create_task(runner.cleanup())
            await asyncio.sleep(0.1)
            async with aiohttp.ClientSession() as other:
                with pytest.raises(aiohttp.ClientConnectorError):
                    await other.get(f"{url}/health")
            assert (await read_events(resp))[-1] == "[DONE]"
        await stopping
