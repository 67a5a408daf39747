"""Every route with a trailing slash (``/v1/models/``) is served as the route itself, behind the
same key checks: FastChat's server redirects those paths, and some clients do not follow."""

from __future__ import annotations

import re

import pytest

from fastchat_api.routes import slash_form

from ..support import CHAT

KEY = {"Authorization": "Bearer sk-one"}
COMPLETION = {"model": "fake-model", "prompt": "Hi"}
POSTS = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": COMPLETION,
    "/v1/embeddings": {"model": "fake-model", "input": "a"},
    "/v1/engines/fake-model/embeddings": {"input": "a"},
    "/api/v1/chat/completions": CHAT,
    "/api/v1/token_check": {"prompts": [{"model": "fake-model", "prompt": "Hi", "max_tokens": 1}]},
}
GETS = ["/v1/models", "/v1/models/fake-model", "/health", "/ready", "/metrics", "/openapi.json", "/docs"]


@pytest.fixture
async def keyed(make_client):
    return await make_client(auth={"api_keys": ["sk-one"]}, metrics={"token": "scrape"})


def filled(canonical: str) -> str:
    """A concrete path of a route pattern: every parameter is the stand-in's model."""
    return re.sub(r"{\w+}", "fake-model", canonical)


async def test_every_route_has_its_slash_form(keyed):
    routes = {(r.method, r.resource.canonical) for r in keyed.app.router.routes() if r.method != "OPTIONS"}
    plain = {(method, path) for method, path in routes if not slash_form(path)}
    assert {(method, path + "/") for method, path in plain} == routes - plain
    assert {path for method, path in plain if method == "POST"} == {
        re.sub("fake-model", "{model_name}", path) for path in POSTS}


async def test_a_fixed_path_is_registered_before_its_slash_form(keyed):
    """A request to a fixed path is matched by the first resource the router tries for it."""
    order = [resource.canonical for resource in keyed.app.router.resources()]
    fixed = [path for path in order if "{" not in path and not slash_form(path)]
    assert "/v1/chat/completions" in fixed
    for path in fixed:
        assert order.index(path) < order.index(path + "/"), path


@pytest.mark.parametrize("path", POSTS)
async def test_post_routes_answer_the_same_with_a_slash(keyed, fake, path):
    plain = await keyed.post(path, json=POSTS[path], headers=KEY)
    slashed = await keyed.post(path + "/", json=POSTS[path], headers=KEY, allow_redirects=False)
    assert (slashed.status, plain.status) == (200, 200), await slashed.text()
    assert (await slashed.json()).keys() == (await plain.json()).keys()


@pytest.mark.parametrize("path", GETS)
async def test_get_routes_answer_the_same_with_a_slash(keyed, path):
    headers = {"Authorization": "Bearer scrape"} if path == "/metrics" else KEY
    plain = await keyed.get(path, headers=headers)
    slashed = await keyed.get(path + "/", headers=headers, allow_redirects=False)
    assert (slashed.status, plain.status) == (200, 200)
    assert slashed.content_type == plain.content_type


async def test_a_streamed_answer_on_a_slash_form(keyed):
    resp = await keyed.post("/v1/chat/completions/", json=CHAT | {"stream": True}, headers=KEY,
                            allow_redirects=False)
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    assert (await resp.read()).endswith(b"data: [DONE]\n\n")


async def test_the_slash_forms_ask_for_the_same_keys(keyed):
    routes = [r for r in keyed.app.router.routes()
              if r.method in ("GET", "POST") and slash_form(r.resource.canonical)]
    protected = [r for r in routes if r.resource.canonical.startswith(("/v1/", "/api/v1/", "/metrics"))]
    assert len(protected) == len(POSTS) + 3  # and the GETs of /v1/models, /v1/models/{model}, /metrics
    for route in protected:
        resp = await keyed.request(route.method, filled(route.resource.canonical), json={},
                                   allow_redirects=False)
        assert resp.status == 401, route
        assert (await resp.json())["error"]["code"] in ("invalid_api_key", "invalid_metrics_token")
    resp = await keyed.get("/v1/models/", headers={"Authorization": "Bearer sk-wrong"})
    assert resp.status == 401


async def test_a_model_name_with_slashes_keeps_them(client, fake):
    fake.models = ["org/name"]
    resp = await client.get("/v1/models/org/name/", allow_redirects=False)
    assert resp.status == 200 and (await resp.json())["id"] == "org/name"
    assert (await client.get("/v1/models/org/name")).status == 200


async def test_a_slash_form_takes_a_cors_preflight(keyed):
    resp = await keyed.options("/v1/chat/completions/", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] in ("*", "http://app.example")


async def test_the_document_lists_each_route_once(client):
    paths = (await (await client.get("/openapi.json/")).json())["paths"]
    assert "/v1/models" in paths and not [path for path in paths if slash_form(path)]


async def test_a_wrong_method_on_a_slash_form_is_a_405(client):
    plain, slashed = await client.get("/v1/chat/completions"), await client.get("/v1/chat/completions/")
    assert slashed.status == plain.status == 405
    assert slashed.headers["Allow"] == plain.headers["Allow"]
    assert await slashed.json() == await plain.json()
