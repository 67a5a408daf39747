"""CORS answers say what they depend on: ``Vary: Origin`` on every answer of a route (actual
responses, errors, streams), and on preflights the method and headers asked for too, so that a
cache never serves one origin's answer to another."""

from __future__ import annotations

import pytest

from .support import CHAT, exchange, request

ORIGIN = {"Origin": "https://app.example"}
PREFLIGHT_VARY = ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]


def varies_by(resp) -> list[str]:
    return [name.strip() for value in resp.headers.getall("Vary", []) for name in value.split(",")]


@pytest.fixture
async def keyed(make_client):
    return await make_client(auth={"api_keys": ["sk-one"]})


@pytest.mark.parametrize("origin", [ORIGIN, {}], ids=["cross-origin", "same-origin"])
async def test_answers_errors_and_streams_vary_by_origin(keyed, origin):
    """Without an Origin the answer lacks the CORS headers: that too depends on the Origin."""
    key = {"Authorization": "Bearer sk-one"}
    answers = [
        await keyed.get("/v1/models", headers=origin | key),
        await keyed.get("/v1/models", headers=origin),  # 401
        await keyed.post("/v1/chat/completions", json=CHAT | {"stream": True}, headers=origin | key),
        await keyed.post("/v1/chat/completions", json={"model": 1}, headers=origin | key),  # 400
        await keyed.get("/health", headers=origin),
    ]
    assert [resp.status for resp in answers] == [200, 401, 200, 400, 200]
    for resp in answers:
        assert varies_by(resp) == ["Origin"], resp.url
        assert ("Access-Control-Allow-Origin" in resp.headers) == bool(origin)


async def test_preflights_vary_by_origin_method_and_headers(keyed):
    resp = await keyed.options("/v1/chat/completions", headers=ORIGIN | {
        "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Headers"] == "AUTHORIZATION"
    assert varies_by(resp) == PREFLIGHT_VARY


async def test_an_origin_not_allowed_gets_no_cors_headers_but_still_varies(make_client):
    client = await make_client(cors={"allowed_origins": ["https://app.example"]})
    allowed = await client.get("/v1/models", headers=ORIGIN)
    other = await client.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Origin" not in other.headers
    assert varies_by(allowed) == varies_by(other) == ["Origin"]


async def test_no_vary_where_the_origin_changes_nothing(make_client):
    cors_off = await make_client(cors={"allowed_origins": []})
    resp = await cors_off.get("/v1/models", headers=ORIGIN)
    assert resp.status == 200 and "Vary" not in resp.headers
    assert "Access-Control-Allow-Origin" not in resp.headers
    client = await make_client()
    resp = await client.get("/no/such/route", headers=ORIGIN)  # no route, no CORS headers
    assert resp.status == 404 and "Vary" not in resp.headers


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
async def test_an_origin_that_is_not_ascii_is_not_echoed(client, method):
    """Browsers send origins in ASCII; other bytes get no CORS answer rather than an echo
    (aiohttp drops the odd bytes from the header it writes, which made another origin)."""
    headers = {"Origin": b"https://app\xff.example", "Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "authorization"}
    answer = await exchange(client, request(method, "/v1/models", headers))
    assert answer.status == 200
    assert not [name for name, _ in answer.headers if name.lower().startswith("access-control-")]
    assert answer.header("Vary")
