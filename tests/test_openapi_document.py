"""``/openapi.json`` says what the server answers and what it enforces (schemathesis holds the
server to it in ``test_openapi_conformance.py``)."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from fastchat_api import schemas

ANSWERS = {  # path, method: (JSON component, stream event component, other media type)
    ("/v1/chat/completions", "post"): ("ChatCompletionResponse", "ChatCompletionChunk", None),
    ("/api/v1/chat/completions", "post"): ("ChatCompletionResponse", "ChatCompletionChunk", None),
    ("/v1/completions", "post"): ("TextCompletion", "TextCompletionChunk", None),
    ("/v1/embeddings", "post"): ("EmbeddingList", None, None),
    ("/v1/engines/{model_name}/embeddings", "post"): ("EmbeddingList", None, None),
    ("/v1/models", "get"): ("ModelList", None, None),
    ("/v1/models/{model}", "get"): ("Model", None, None),
    ("/api/v1/token_check", "post"): ("TokenCheckResponse", None, None),
    ("/health", "get"): ("Health", None, None),
    ("/ready", "get"): ("Ready", None, None),
    ("/metrics", "get"): (None, None, "text/plain"),
    ("/openapi.json", "get"): (None, None, "application/json"),
    ("/docs", "get"): (None, None, "text/html"),
}


async def document(client) -> dict:
    return await (await client.get("/openapi.json")).json()


def component(doc: dict, ref: str) -> dict:
    return doc["components"]["schemas"][ref.rpartition("/")[2]]


async def test_every_success_describes_its_content(client):
    doc = await document(client)
    assert {(path, method) for path, methods in doc["paths"].items() for method in methods} == set(ANSWERS)
    for (path, method), (body, events, other) in ANSWERS.items():
        content = doc["paths"][path][method]["responses"]["200"]["content"]
        if body:
            assert content["application/json"]["schema"]["$ref"].endswith(f"/{body}")
        if events:
            data = content["text/event-stream"]["schema"]["properties"]["data"]["anyOf"]
            assert data[0] == {"const": "[DONE]"}
            refs = [ref["$ref"] for ref in data[1]["contentSchema"]["anyOf"]]
            assert refs == [f"#/components/schemas/{events}", "#/components/schemas/StreamError"]
        if other:
            assert list(content) == [other]


async def test_enforced_ranges_and_limits_are_stated(client):
    doc = await document(client)
    chat = doc["components"]["schemas"]["ChatCompletion"]["properties"]
    assert (chat["temperature"]["minimum"], chat["temperature"]["maximum"]) == (0, 2)
    assert (chat["top_p"]["minimum"], chat["top_p"]["maximum"]) == (0, 1)
    assert (chat["n"]["minimum"], chat["n"]["maximum"]) == (1, schemas.MAX_N)
    assert (chat["max_tokens"]["minimum"], chat["max_tokens"]["maximum"]) == (1, schemas.MAX_TOKENS)
    assert chat["top_k"]["not"] == {"enum": [0]} and chat["top_k"]["maximum"] == 2**63 - 1
    assert chat["model"]["maxLength"] == schemas.MAX_NAME
    messages = chat["messages"]["anyOf"]
    assert messages[0] == {"type": "string", "maxLength": schemas.MAX_TEXT}
    assert (messages[1]["minItems"], messages[1]["maxItems"]) == (1, schemas.MAX_ITEMS)
    kinds = messages[1]["items"]["anyOf"]
    assert kinds[0]["properties"]["role"]["enum"] == ["system", "developer", "user", "assistant"]
    assert [kind["properties"]["role"]["enum"] for kind in kinds[1:]] == [["tool"], ["function"], ["assistant"]]
    assert kinds[1]["required"] == ["role", "tool_call_id", "content"]


async def test_text_only_fields_have_types(client):
    doc = await document(client)
    completion = doc["components"]["schemas"]["Completion"]["properties"]
    assert [branch.get("type") for branch in completion["prompt"]["anyOf"]] == ["string", "array"]
    chat = doc["components"]["schemas"]["ChatCompletion"]["properties"]
    assert [branch.get("type") for branch in chat["stop"]["anyOf"]] == ["string", "array", "null"]
    assert chat["tools"]["type"] == ["array", "null"] and chat["tools"]["maxItems"] == 128
    error = doc["components"]["schemas"]["Error"]["properties"]
    assert error["object"] == {"type": "string", "enum": ["error"]}


@pytest.mark.parametrize("strict", [False, True])
async def test_unknown_fields_are_documented_as_the_mode_treats_them(make_client, strict):
    doc = await document(await make_client(compat={"strict": strict}))
    validate(doc)
    chat = doc["components"]["schemas"]["ChatCompletion"]
    assert chat.get("additionalProperties", True) is not strict
    assert ("enum" in chat["properties"]["seed"]) is strict  # ignored, or refused but for null
