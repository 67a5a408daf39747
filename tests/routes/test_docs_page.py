"""``/docs`` as a person reads it: the API's groups first, with proper names; every field's
default, meaning and support; every error an operation can answer with. The document is
checked here, and the page as a real browser renders it (headless Chromium, when installed)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil

import pytest

from fastchat_api import protocol
from fastchat_api.openapi import TAGS

GROUPS = ["Chat", "Completions", "Embeddings", "Models", "FastChat", "Operations"]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
async def keyed(make_client):
    return await make_client(auth={"api_keys": ["sk-one"]}, metrics={"token": "scrape"})


async def document(client) -> dict:
    return await (await client.get("/openapi.json")).json()


def operations(doc: dict):
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            yield path, method, op


def body_of(doc: dict, op: dict) -> dict:
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rpartition("/")[2]]


async def test_groups_have_names_and_the_api_comes_first(keyed):
    doc = await document(keyed)
    assert [tag["name"] for tag in doc["tags"]] == GROUPS == [tag["name"] for tag in TAGS]
    assert all(tag["description"] for tag in doc["tags"])
    tags = {path: op["tags"] for path, _, op in operations(doc)}
    assert tags["/v1/chat/completions"] == ["Chat"] and tags["/api/v1/token_check"] == ["FastChat"]
    assert tags["/v1/models/{model}"] == ["Models"] and tags["/metrics"] == ["Operations"]
    assert {tag for names in tags.values() for tag in names} == set(GROUPS)


@pytest.mark.parametrize(("schema", "target"), [
    ("ChatCompletion", protocol.ChatRequest), ("APIChatCompletion", protocol.APIChatRequest),
    ("Completion", protocol.CompletionRequest), ("Embeddings", protocol.EmbeddingsRequest),
])
async def test_defaults_are_the_typed_bodies(client, schema, target):
    properties = (await document(client))["components"]["schemas"][schema]["properties"]
    shown = {name: prop["default"] for name, prop in properties.items() if "default" in prop}
    kept = {item.name: item.default for item in dataclasses.fields(target)
            if item.name in properties and item.default not in (None, dataclasses.MISSING)}
    assert shown == kept


async def test_fastchat_defaults_are_shown(client):
    schemas = (await document(client))["components"]["schemas"]
    chat = schemas["ChatCompletion"]["properties"]
    assert (chat["temperature"]["default"], chat["top_p"]["default"], chat["n"]["default"],
            chat["top_k"]["default"]) == (0.7, 1.0, 1, -1)
    assert "default" not in chat["max_tokens"]  # all the room the context leaves
    assert schemas["Completion"]["properties"]["max_tokens"]["default"] == 16
    assert schemas["APIChatCompletion"]["properties"]["repetition_penalty"]["default"] == 1.0
    assert schemas["StreamOptions"]["properties"]["include_usage"]["default"] is False


async def test_every_field_says_what_it_means_to_a_client(client):
    schemas = (await document(client))["components"]["schemas"]
    for name in ("ChatCompletion", "APIChatCompletion", "Completion", "Embeddings", "TokenCheck",
                 "TokenCheckItem", "StreamOptions"):
        for field, prop in schemas[name]["properties"].items():
            text = prop.get("description", "")
            assert text, (name, field)
            assert "``" not in text and not re.search(r"orjson|marshmallow|5\.0 is taken", text), text
    chat = schemas["ChatCompletion"]["properties"]
    assert "conversation template" in chat["messages"]["description"]
    assert chat["guided_json"]["x-support"] == "refused" and "guided" in chat["guided_json"]["description"]
    assert "x-support" not in chat["tools"] and "tool_calls" in chat["tools"]["description"]
    assert "access log" in chat["user"]["description"] and "x-support" not in chat["user"]
    assert chat["metadata"]["x-support"] == "ignored" and chat["seed"]["x-support"] == "ignored"
    assert "x-support" not in chat["temperature"] and "x-support" not in chat["stream_options"]
    assert "json_schema" in chat["response_format"]["description"]
    item = schemas["TokenCheckItem"]["properties"]
    assert item["max_tokens"]["description"] != chat["max_tokens"]["description"]


async def test_each_operation_lists_its_errors(keyed):
    doc = await document(keyed)
    statuses = {(path, method): sorted(op["responses"]) for path, method, op in operations(doc)}
    generation = ["200", "400", "401", "404", "413", "415", "502", "503", "504"]
    assert statuses["/v1/chat/completions", "post"] == generation
    assert statuses["/v1/completions", "post"] == generation
    assert statuses["/v1/embeddings", "post"] == generation
    assert statuses["/api/v1/token_check", "post"] == generation  # its prompts name models
    assert statuses["/v1/models", "get"] == ["200", "401", "502", "503", "504"]
    assert statuses["/v1/models/{model}", "get"] == ["200", "401", "404", "502", "503", "504"]
    assert statuses["/metrics", "get"] == ["200", "401"]
    assert statuses["/ready", "get"] == ["200", "503"]
    assert statuses["/health", "get"] == statuses["/docs", "get"] == ["200"]
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            assert response["description"] not in ("An error", "Success") or status == "200"
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Retry-After" in doc["paths"]["/v1/chat/completions"]["post"]["responses"]["503"]["headers"]
    assert "metrics token" in doc["paths"]["/metrics"]["get"]["responses"]["401"]["description"]


async def test_without_keys_no_401_is_listed(client):
    doc = await document(client)
    assert not [path for path, _, op in operations(doc) if "401" in op["responses"]]


# -- the page in a real browser ----------------------------------------------------------------


async def rendered(server, path: str) -> str:
    """The DOM of ``path`` once the page's script has run, as headless Chromium sees it."""
    browser = await asyncio.create_subprocess_exec(
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
        "--dump-dom", str(server.make_url(path)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    async with asyncio.timeout(60):
        out, _ = await browser.communicate()
    return out.decode()


@pytest.fixture
async def page_server(aiohttp_server, fake):
    from fastchat_api.app import create_app
    from fastchat_api.config import build_config

    config = build_config(None, {"controller": {"address": fake.address}, "auth": {"api_keys": ["k"]}})
    return await aiohttp_server(create_app(config))


@pytest.mark.skipif(BROWSER is None, reason="no Chromium to render the page")
@pytest.mark.parametrize("path", ["/docs", "/docs/"])
async def test_the_page_renders_the_groups_in_order(page_server, path):
    dom = await rendered(page_server, path)
    assert re.findall(r"<h2[^>]*>([^<]*)</h2>", dom) == GROUPS
    assert 'class="error"' not in dom


@pytest.mark.skipif(BROWSER is None, reason="no Chromium to render the page")
async def test_the_page_puts_required_fields_first_with_defaults_and_folds_the_rest(page_server):
    dom = await rendered(page_server, "/docs#post-/v1/chat/completions")
    chat = dom[dom.index('id="post-/v1/chat/completions"'):]
    chat = chat[: chat.index('<details class="op"')]
    table, folded = chat.split('<details class="more">', 1)
    fields = re.findall(r"<tr><td><code>(\w+)</code>", table)
    assert fields[:2] == ["model", "messages"] and "temperature" in fields
    assert "tools" in fields and "guided_json" not in fields and "guided_json" in folded  # "Not supported"
    assert re.search(r"<code>temperature</code>.*?<code>0\.7</code>", chat)
    assert "Not supported" in chat and "Errors: 400, 401, 404, 413, 415, 502, 503, 504" in chat
    assert 'details class="op" id="post-/v1/chat/completions" open' in dom
