"""Middlewares: API keys, error mapping, request ids and CORS, as a client sees them."""

from __future__ import annotations

import pytest

from .support import CHAT, exchange, request


@pytest.fixture
async def keyed(make_client):
    return await make_client(auth={"api_keys": ["sk-one", "sk-two"]})


@pytest.mark.parametrize("header", [None, "Bearer sk-wrong", "Basic sk-one", "Bearer ", "sk-one"])
async def test_bad_or_missing_key_is_401(keyed, header):
    headers = {"Authorization": header} if header is not None else {}
    resp = await keyed.get("/v1/models", headers=headers)
    assert resp.status == 401
    body = await resp.json()
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["type"] == "authentication_error"
    assert "detail" not in body


@pytest.mark.parametrize("key", ["sk-one", "sk-two"])
async def test_any_configured_key_passes_and_scheme_is_case_insensitive(keyed, key):
    for scheme in ("Bearer", "bearer"):
        resp = await keyed.get("/v1/models", headers={"Authorization": f"{scheme} {key}"})
        assert resp.status == 200


async def test_api_v1_routes_are_protected_by_default(keyed):
    resp = await keyed.post("/api/v1/token_check", json={"prompts": []})
    assert resp.status == 401


async def test_api_v1_routes_can_be_left_open(make_client):
    client = await make_client(auth={"api_keys": ["k"], "protect_api_v1": False})
    resp = await client.post("/api/v1/anything", json={})
    assert resp.status == 404  # past the key check, then no such route


async def test_cors_preflight_passes_without_key(keyed):
    resp = await keyed.options("/v1/chat/completions", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-stainless-os"})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] in ("*", "http://app.example")


async def test_cors_headers_on_answers_and_errors(keyed):
    resp = await keyed.get("/v1/models", headers={"Origin": "http://app.example"})
    assert resp.status == 401
    assert "Access-Control-Allow-Origin" in resp.headers


async def test_no_keys_configured_accepts_any_key(client):
    resp = await client.get("/v1/models", headers={"Authorization": "Bearer EMPTY"})
    assert resp.status == 200


async def test_request_id_is_generated_or_echoed(client):
    resp = await client.get("/v1/models")
    assert resp.headers["X-Request-Id"].startswith("req-")
    resp = await client.get("/v1/models", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True},
                             headers={"X-Request-Id": "stream-1"})
    assert resp.headers["X-Request-Id"] == "stream-1"


async def test_unknown_route_and_method_are_json(client):
    resp = await client.get("/v2/nothing")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "unknown_url"
    resp = await client.delete("/v1/models")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_body_too_large_is_413(make_client):
    client = await make_client(server={"client_max_size": 1024})
    resp = await client.post("/v1/chat/completions", json=CHAT | {"padding": "x" * 4096})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "request_too_large"


async def test_unexpected_exception_is_an_openai_500(client, monkeypatch):
    from fastchat_api.pipeline import chat

    async def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(chat, "plan_chat", explode)
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["type"] == "server_error"
    assert "secret" not in body["error"]["message"]


async def test_controller_down_is_503(make_client):
    client = await make_client(controller={"address": "http://127.0.0.1:9"})
    resp = await client.get("/v1/models")
    assert resp.status == 503
    assert resp.headers["Retry-After"]


@pytest.mark.parametrize("given", ["abc-123", "x" * 200, "trace id: 7/b", "é-ünï"])
async def test_a_sane_request_id_is_echoed(client, given):
    resp = await client.get("/v1/models", headers={"X-Request-Id": given})
    assert resp.headers["X-Request-Id"] == given


def is_new_id(value: str) -> bool:
    return value.startswith("req-") and len(value) == len("req-") + 22


@pytest.mark.parametrize("given", ["", "x" * 201, "tab\there"], ids=["empty", "too-long", "tab"])
async def test_an_insane_request_id_is_replaced_by_a_new_one(client, given):
    """An id that would bloat or garble log lines and headers downstream is not trusted."""
    resp = await client.get("/v1/models", headers={"X-Request-Id": given})
    assert resp.status == 200
    assert is_new_id(resp.headers["X-Request-Id"])


async def test_a_request_id_that_is_not_utf8_is_replaced_by_a_new_one(client):
    """Bytes no client library sends, on a raw connection: echoed, they could not even be
    encoded into the response's header."""
    answer = await exchange(client, request("GET", "/health", {"X-Request-Id": b"id-\xff\xfe"}))
    assert answer.status == 200
    (given,) = answer.values("X-Request-Id")
    assert is_new_id(given)
