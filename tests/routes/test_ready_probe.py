"""``GET /ready`` under load and in trouble: probes share one controller call (single-flight)
and reuse its answer for ``catalog.READY_WINDOW`` seconds, an outage still shows once the
window is over, and a failure carries the code the ``/v1`` routes give the same fact."""

from __future__ import annotations

import asyncio

import pytest

from devstack.standin import StandIn
from fastchat_api import errors
from fastchat_api.config import build_config
from fastchat_api.upstream import Upstream, catalog, create_session

from ..support import FakeClock

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}]}


async def test_many_probes_cost_the_controller_one_call_per_window(make_client, fake, monkeypatch):
    monkeypatch.setattr(catalog, "READY_WINDOW", 60)
    client = await make_client()
    answers = await asyncio.gather(*(client.get("/ready") for _ in range(300)))
    assert [resp.status for resp in answers] == [200] * 300
    assert len(fake.sent("/list_models")) == 1


async def test_concurrent_probes_share_one_call_without_a_window(make_client, fake, monkeypatch):
    monkeypatch.setattr(catalog, "READY_WINDOW", 0)
    fake.controller_delay = 0.5  # every probe arrives while the first call is running
    client = await make_client()
    answers = await asyncio.gather(*(client.get("/ready") for _ in range(50)))
    assert [resp.status for resp in answers] == [200] * 50
    assert len(fake.sent("/list_models")) == 1


async def test_an_outage_shows_once_the_window_is_over(aiohttp_server):
    """With a clock moved by hand: the answer is reused inside the window, failure included,
    and the controller is asked again right after it."""
    stand_in, clock = StandIn(), FakeClock()
    server = await aiohttp_server(stand_in.app())
    port = server.port
    config = build_config({"controller": {"address": f"http://127.0.0.1:{port}"}})
    async with create_session(config.upstream) as session:
        upstream = Upstream(session, config, clock=clock)
        assert await upstream.catalog.controller_models() == ["fake-model"]

        await server.close()
        assert await upstream.catalog.controller_models() == ["fake-model"]  # inside the window
        clock.advance(catalog.READY_WINDOW)
        with pytest.raises(errors.APIError) as caught:
            await upstream.catalog.controller_models()
        assert caught.value.code == "controller_unreachable"

        await aiohttp_server(stand_in.app(), port=port)
        with pytest.raises(errors.APIError):  # the failure too is the window's answer
            await upstream.catalog.controller_models()
        clock.advance(catalog.READY_WINDOW)
        assert await upstream.catalog.controller_models() == ["fake-model"]
        await upstream.close()


@pytest.mark.parametrize("fact, sections", [
    ("controller_unreachable", {"controller": {"address": "http://127.0.0.1:9"}}),  # no listener
    ("upstream_timeout", {"upstream": {"connect_timeout": 0.1, "read_timeout": 0.1}}),
])
async def test_ready_says_what_v1_says_for_the_same_fact(make_client, fake, monkeypatch, fact,
                                                          sections):
    monkeypatch.setattr(catalog, "READY_WINDOW", 0)
    fake.controller_delay = 1.0  # past the timeout's 0.2 s
    client = await make_client(**sections)
    v1 = await client.post("/v1/chat/completions", json=CHAT)
    ready = await client.get("/ready")
    assert ready.status == 503 and ready.headers["Retry-After"]
    assert (await ready.json())["error"]["code"] == (await v1.json())["error"]["code"] == fact
    assert (await ready.json())["code"] == (await v1.json())["code"]
