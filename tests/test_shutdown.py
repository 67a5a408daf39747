"""Graceful shutdown, through aiohttp's own runner (what ``run_app`` and gunicorn call on
SIGTERM): in-flight requests finish within ``server.shutdown_timeout``, later ones end with a
last word, and nothing new is accepted."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from devstack.processes import find_free_port
from fastchat_api.app import create_app, runner_options
from fastchat_api.config import build_config
from fastchat_api.shutdown import Draining

from .support import CHAT, read_events, streamed_text, until


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


async def test_streams_in_flight_finish_within_the_grace_period(serve, fake):
    fake.delay = 0.1  # five frames: half a second
    runner, url = await serve(grace=5)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}) as resp:
            assert resp.status == 200
            await resp.content.readuntil(b"\n\n")
            started = time.monotonic()
            stopping = asyncio.create_task(runner.cleanup())
            chunks = await read_events(resp)
        await stopping
    assert time.monotonic() - started < 2
    assert streamed_text(chunks) == "Hello there, friend!"  # all of it, after the role chunk
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_a_stream_outliving_the_grace_period_ends_with_an_error_event(serve, fake):
    fake.delay = 0.5  # the next frame comes after the grace period
    runner, url = await serve(grace=0.2)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}) as resp:
            await resp.content.readuntil(b"\n\n")
            started = time.monotonic()
            stopping = asyncio.create_task(runner.cleanup())
            *_, error = await read_events(resp)  # a whole body: the chunked encoding is ended
        await stopping
    assert time.monotonic() - started < 2
    assert error["error"]["code"] == "server_shutting_down"
    assert error["error"]["type"] == "server_error"


async def test_a_request_outliving_the_grace_period_gets_a_503(serve, fake):
    fake.delay = 5.0
    runner, url = await serve(grace=0.3)
    async with aiohttp.ClientSession() as session:
        answer = asyncio.create_task(session.post(f"{url}/v1/chat/completions", json=CHAT))
        await until(lambda: fake.sent("/worker_generate"))
        await runner.cleanup()
        resp = await answer
        body = await resp.json()
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert body["error"]["code"] == "server_shutting_down" and body["code"] == 50001


async def test_no_new_connection_is_accepted_once_shutdown_starts(serve, fake):
    fake.delay = 0.1  # the stream is still running when the refused connection is tried
    runner, url = await serve(grace=5)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}) as resp:
            await resp.content.readuntil(b"\n\n")
            stopping = asyncio.create_task(runner.cleanup())
            await until(lambda: not runner.sites)  # the listener is closed
            async with aiohttp.ClientSession() as other:
                with pytest.raises(aiohttp.ClientConnectorError):
                    await other.get(f"{url}/health")
            assert streamed_text(await read_events(resp)) == "Hello there, friend!"
        await stopping


async def test_a_handler_is_forgotten_once_it_ends_even_by_failing(caplog):
    """``Draining.track``: a handler that ended, by raising too, is no longer waited for or
    cancelled by the shutdown."""
    draining = Draining()
    with pytest.raises(RuntimeError):
        with draining.track():
            raise RuntimeError
    with draining.track():
        pass
    await draining.drain(0)
    assert not [r for r in caplog.records if "Shutting down" in r.getMessage()]
