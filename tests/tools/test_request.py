"""Hostile or inconsistent tool fields: a 400 in OpenAI's error format naming the field, and no
worker asked."""

from __future__ import annotations

import pytest

from ..support import CHAT, nested_schema

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
DEEP = nested_schema(300)  # past what jsonschema can check

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def tool(**function) -> dict:
    return {"type": "function", "function": {"name": "f", **function}}


@pytest.mark.parametrize(("fields", "param"), [
    ({"tools": [tool(name="bad name")]}, "tools[0].function.name"),
    ({"tools": [tool(name="x" * 65)]}, "tools[0].function.name"),
    ({"tools": [tool(name="")]}, "tools[0].function.name"),
    ({"tools": [WEATHER, {"type": "function", "function": {"name": 7}}]}, "tools[1].function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"tools": [{"type": "function"}]}, "tools[0].function"),
    ({"tools": "get_weather"}, "tools"),
    ({"tools": [WEATHER] * 2}, "tools[1].function.name"),
    ({"tools": [WEATHER] * 129}, "tools"),
    ({"tools": [tool(parameters={"type": "bogus"})]}, "tools[0].function.parameters"),
    ({"tools": [tool(parameters={"$ref": "https://example.com/s"})]}, "tools[0].function.parameters"),
    ({"tools": [tool(parameters=[1])]}, "tools[0].function.parameters"),
    ({"tools": [tool(parameters={"type": "object", "properties": {f"p{i}": {"type": "nope"} for i in range(5000)}})]},
     "tools[0].function.parameters"),
    ({"tools": [tool(strict="yes")]}, "tools[0].function.strict"),
    ({"tools": [tool(description=5)]}, "tools[0].function.description"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}},
     "tool_choice.function.name"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "tool_choice.function"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice"),
    ({"functions": [{"name": "a b"}]}, "functions[0].name"),
    ({"functions": [WEATHER["function"]], "function_call": {"name": "nope"}}, "function_call.name"),
    ({"functions": [WEATHER["function"]], "function_call": "required"}, "function_call"),
    ({"functions": [WEATHER["function"]], "tools": [WEATHER]}, "functions"),
    ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
    ({"tools": [WEATHER], "logprobs": True}, "logprobs"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": DEEP}}]}, "tools[0].function.parameters"),
    ({"tools": [WEATHER], "messages": "a ready prompt"}, "messages"),
    ({"messages": [{"role": "tool", "content": "12 C"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "tool", "tool_call_id": 5, "content": "12 C"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "tool", "tool_call_id": "call_1"}]}, "messages[0].content"),
    ({"messages": [{"role": "function", "content": "12 C"}]}, "messages[0].name"),
    ({"messages": [{"role": "assistant", "tool_calls": "x"}]}, "messages[0].tool_calls"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"type": "function"}]}]}, "messages[0].tool_calls[0].id"),
    ({"messages": [{"role": "assistant", "tool_calls": [CALL | {"function": {"name": "f", "arguments": {}}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "assistant", "function_call": {"arguments": "{}"}}]}, "messages[0].function_call.name"),
])
async def test_a_bad_tool_field_is_a_400_naming_it(client, fake, fields, param):
    resp = await client.post("/v1/chat/completions", json=CHAT | fields)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    assert not fake.sent("/worker_generate") and not fake.sent("/worker_generate_stream")


@pytest.mark.parametrize("fields", [
    {"tools": []}, {"tools": None}, {"tool_choice": "none"}, {"tool_choice": "auto"}, {"functions": []},
    {"function_call": "none"}, {"parallel_tool_calls": False}, {"tools": [WEATHER], "tool_choice": "none",
                                                                "logprobs": True},
    {"tool_choice": "auto", "logprobs": True},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "function_call": {
        "name": "get_weather", "arguments": "{}"}}, {"role": "function", "name": "get_weather", "content": None}]},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                  {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "12 C"}]}]},
])
async def test_what_asks_for_no_tool_call_is_accepted(client, fake, fields):
    resp = await client.post("/v1/chat/completions", json=CHAT | fields)
    assert resp.status == 200, await resp.text()
    assert "X-Ignored-Params" not in resp.headers


async def test_a_tool_result_with_an_image_is_a_400(client, fake):
    messages = [{"role": "tool", "tool_call_id": "call_1",
                 "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]
    resp = await client.post("/v1/chat/completions", json=CHAT | {"messages": messages})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "messages[0].content"
