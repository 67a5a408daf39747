"""``GET /health`` and ``GET /ready``: liveness without upstream calls, readiness that follows
the controller."""

from __future__ import annotations

from devstack.standin import StandIn
from fastchat_api.app import create_app
from fastchat_api.config import build_config
from fastchat_api.upstream import catalog

from ..support import until


async def test_health_calls_nothing_upstream_and_needs_no_key(make_client, fake):
    client = await make_client(auth={"api_keys": ["sk-one"]})
    await until(lambda: fake.sent("/list_models"))  # fetched as the app starts, by no request
    before = list(fake.requests)
    resp = await client.get("/health")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
    assert list(fake.requests) == before


async def test_ready_lists_the_models_and_needs_no_key(make_client):
    client = await make_client(auth={"api_keys": ["sk-one"]})
    resp = await client.get("/ready")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "models": ["fake-model"]}


async def test_ready_is_503_while_no_model_is_served(make_client, fake, monkeypatch):
    monkeypatch.setattr(catalog, "READY_WINDOW", 0)  # every probe asks the controller again
    client = await make_client()
    fake.models = []
    resp = await client.get("/ready")
    assert resp.status == 503
    body = await resp.json()
    assert body["error"]["type"] == "server_error" and body["error"]["code"] == "upstream_unavailable"
    assert "no model" in body["error"]["message"]
    assert resp.headers["Retry-After"]
    fake.models = ["fake-model"]
    assert (await client.get("/ready")).status == 200


async def test_ready_flips_when_the_controller_goes_away_and_back(aiohttp_server, aiohttp_client,
                                                                  monkeypatch):
    monkeypatch.setattr(catalog, "READY_WINDOW", 0)  # every probe asks the controller again
    stand_in = StandIn()
    server = await aiohttp_server(stand_in.app())
    port = server.port
    config = build_config({"controller": {"address": f"http://127.0.0.1:{port}"}})
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/ready")).status == 200
    assert (await client.get("/v1/models")).status == 200  # the cached list, for the outage grace

    await server.close()
    resp = await client.get("/ready")
    assert resp.status == 503
    message = (await resp.json())["error"]["message"]
    assert message.startswith("Not ready: ") and "cannot be reached" in message
    assert (await client.get("/health")).status == 200

    await aiohttp_server(stand_in.app(), port=port)
    assert (await client.get("/ready")).status == 200
