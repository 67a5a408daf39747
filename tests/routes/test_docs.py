"""``GET /openapi.json`` and ``GET /docs``: a valid OpenAPI document of every route, and a page
that loads nothing from elsewhere."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from fastchat_api import schemas
from fastchat_api.openapi import ERROR_SCHEMA
from fastchat_api.routes import slash_form
from fastchat_api.schemas import request_schema

DOCUMENTED_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
async def keyed(make_client):
    return await make_client(auth={"api_keys": ["sk-one"]}, metrics={"token": "scrape"})


async def document(client) -> dict:
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.json()


async def test_document_is_valid_openapi(keyed):
    validate(await document(keyed))


async def test_document_lists_every_route_of_the_app(keyed):
    doc = await document(keyed)
    routes = {
        (route.resource.canonical, route.method.lower())
        for route in keyed.app.router.routes()
        if route.method in DOCUMENTED_METHODS and not slash_form(route.resource.canonical)
    }
    listed = {(path, method) for path, methods in doc["paths"].items() for method in methods}
    assert routes == listed
    assert {"/v1/chat/completions", "/v1/models/{model}", "/health", "/ready", "/metrics",
            "/openapi.json", "/docs"} <= set(doc["paths"])


async def test_request_bodies_come_from_the_schemas(keyed):
    doc = await document(keyed)
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = doc["components"]["schemas"][ref.rpartition("/")[2]]
    assert set(body["required"]) == {"model", "messages"}
    assert set(schemas.CHAT_COMPLETION.fields) == set(body["properties"])
    assert "conversation" in body["properties"]["messages"]["description"]
    assert "tool_calls" in body["properties"]["tools"]["description"]  # what it gives


async def test_every_post_route_has_a_request_body(keyed):
    posts = [route for route in keyed.app.router.routes() if route.method == "POST"]
    assert posts and all(request_schema(route.handler) is not None for route in posts)


async def test_path_parameters_and_security(keyed):
    doc = await document(keyed)
    model = doc["paths"]["/v1/models/{model}"]["get"]
    assert model["parameters"] == [{"name": "model", "in": "path", "required": True,
                                    "description": model["parameters"][0]["description"],
                                    "schema": {"type": "string"}}]
    assert model["security"] == [{"apiKey": []}]
    assert doc["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]
    assert "security" not in doc["paths"]["/health"]["get"]


async def test_error_schema_describes_real_error_bodies(client):
    resp = await client.get("/v1/models/no-such-model")
    assert resp.status == 404
    ERROR_SCHEMA.load(await resp.json())


async def test_docs_page_is_self_contained(client):
    resp = await client.get("/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert 'new URL("openapi.json"' in page  # beside the page, whatever its path
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no remote asset"
    assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
