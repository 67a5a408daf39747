"""Request validation: FastChat's defaults and range texts, and a 400 naming the bad field."""

from __future__ import annotations

import pytest

from fastchat_api import errors, schemas

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def load_chat(strict=False, **fields):
    return schemas.load(schemas.CHAT_COMPLETION, CHAT | fields, strict=strict)


def test_fastchat_defaults_fill_absent_and_null_fields():
    req = load_chat(temperature=None, n=None)
    assert (req.temperature, req.top_p, req.top_k, req.n) == (0.7, 1.0, -1, 1)
    assert (req.stream, req.max_tokens, req.stop) == (False, None, None)


def test_string_messages_and_content_parts_are_accepted():
    assert load_chat(messages="raw prompt").messages == "raw prompt"
    parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:x"}}]
    assert load_chat(messages=[{"role": "user", "content": parts}]).messages[0]["content"] == parts


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({"temperature": "hot"}, "temperature"),
        ({"n": 1.5}, "n"),
        ({"top_k": 2**64}, "top_k"),  # workers read 64-bit integers at most
        ({"stop": [1]}, "stop"),
        ({"stream": "maybe"}, "stream"),
    ],
)
def test_bad_fields_are_400_naming_the_param(fields, param):
    with pytest.raises(errors.APIError) as caught:
        load_chat(strict=True, **fields)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.fastchat_code == 40001
    assert param in caught.value.message


async def test_malformed_json_is_400(client):
    resp = await client.post("/v1/chat/completions", data=b"{nope",
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("body", [
    b"[" * 2000 + b"]" * 2000,  # deeper than the parser's limit
    b'{"model": "fake-\xff", "messages": "x"}',  # invalid UTF-8
    b'{"model": "fake-model", "messages": "\\ud800"}',  # a lone surrogate
])
async def test_deep_nesting_and_bad_text_are_400(client, body):
    resp = await client.post("/v1/chat/completions", data=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_json"


async def test_a_body_not_in_its_content_encoding_is_400(client):
    resp = await client.post("/v1/chat/completions", data=b'{"model": "fake-model"}',
                             headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_body"


async def test_non_object_json_and_nan_are_400(client):
    for body in (b"[1]", b'{"model": "fake-model", "temperature": NaN, "messages": "x"}'):
        resp = await client.post("/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
        assert resp.status == 400, body


async def test_wrong_content_type_is_415(client):
    resp = await client.post("/v1/chat/completions", data=b"model=x",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415
    assert "application/json" in (await resp.json())["error"]["message"]


async def test_out_of_range_over_http_is_400_with_40302(client):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"model": "fake-model", "temperature": 5})
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == 40302
    assert body["error"]["param"] == "temperature"


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"seed": 7}, "seed", "unsupported_parameter"),  # strict only
        ({"logit_bias": {"50256": -100}}, "logit_bias", "unsupported_parameter"),  # strict only
        ({"modalities": ["text", "audio"]}, "modalities", "unsupported_value"),
    ],
)
def test_parameters_workers_cannot_honour_are_refused_by_name(fields, param, code):
    with pytest.raises(errors.APIError) as caught:
        load_chat(strict=True, **fields)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.code == code
    assert param in caught.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [], "tool_choice": "none", "parallel_tool_calls": False},
        {"response_format": {"type": "text"}},
        {"seed": None, "logit_bias": {}, "logprobs": False, "top_logprobs": 0},
        {"store": False, "metadata": {"a": "b"}, "service_tier": "auto", "user": "u-1"},
        {"prompt_cache_key": "k", "safety_identifier": "s", "modalities": ["text"]},
    ],
)
def test_values_that_ask_for_nothing_are_accepted(fields):
    load_chat(**fields)


def test_unknown_parameters_are_refused_by_name():
    with pytest.raises(errors.APIError) as caught:
        load_chat(strict=True, frobnicate=1)
    assert caught.value.message == "Unrecognized request argument supplied: frobnicate"
    assert caught.value.param == "frobnicate"
    assert caught.value.code == "unknown_parameter"


async def test_repetition_penalty_is_forwarded_on_v1_chat(client, fake):
    await client.post("/v1/chat/completions", json=CHAT | {"model": "fake-model", "repetition_penalty": 1.3})
    await client.post("/v1/chat/completions", json=CHAT | {"model": "fake-model"})
    first, second = fake.sent("/worker_generate")
    assert first["repetition_penalty"] == 1.3
    assert "repetition_penalty" not in second


LONG_NAME = "x" * (schemas.MAX_NAME + 1)
LONG_TEXT = "x" * (schemas.MAX_TEXT + 1)
TOO_MANY = schemas.MAX_ITEMS + 1
USER = {"role": "user", "content": "Hi"}
VALID = {  # a valid body for each schema, which each case makes invalid
    schemas.CHAT_COMPLETION: {"model": "m", "messages": [USER]},
    schemas.COMPLETION: {"model": "m", "prompt": "p"},
    schemas.EMBEDDINGS: {"model": "m", "input": "i"},
    schemas.TOKEN_CHECK: {"prompts": []},
}


@pytest.mark.parametrize(
    ("schema", "fields", "param", "says"),
    [
        (schemas.CHAT_COMPLETION, {"messages": [USER] * TOO_MANY}, "messages", "2049 items"),
        (schemas.CHAT_COMPLETION, {"messages": [{"role": "user", "content": LONG_TEXT}]},
         "messages[0].content", "10485761 characters"),
        (schemas.CHAT_COMPLETION, {"messages": [{"role": "user", "content": [{"type": "text", "text": LONG_TEXT}]}]},
         "messages[0].content[0].text", "more than the 10485760 allowed"),
        (schemas.CHAT_COMPLETION, {"messages": [{"role": LONG_NAME, "content": "Hi"}]},
         "messages[0].role", "1025 characters"),
        (schemas.CHAT_COMPLETION, {"messages": LONG_TEXT}, "messages", "10485761 characters"),
        (schemas.CHAT_COMPLETION, {"model": LONG_NAME}, "model", "1025 characters"),
        (schemas.CHAT_COMPLETION, {"n": 129}, "n", "less than or equal to 128"),
        (schemas.CHAT_COMPLETION, {"n": 1e29}, "n", "64 bits"),
        (schemas.CHAT_COMPLETION, {"max_tokens": 2**20 + 1}, "max_tokens", "1048576"),
        (schemas.CHAT_COMPLETION, {"max_completion_tokens": 2**40}, "max_completion_tokens", "1048576"),
        (schemas.CHAT_COMPLETION, {"stop": ["s"] * 65}, "stop", "65 stop strings"),
        (schemas.CHAT_COMPLETION, {"stop": LONG_NAME}, "stop", "1025 characters"),
        (schemas.COMPLETION, {"prompt": ["p"] * TOO_MANY}, "prompt", "2049 items"),
        (schemas.COMPLETION, {"prompt": ["p"] * 17, "n": 128}, "n", "ask for 2176 completions"),
        (schemas.COMPLETION, {"prompt": "p", "best_of": 129}, "best_of", "128"),
        (schemas.EMBEDDINGS, {"input": ["i"] * TOO_MANY}, "input", "2049 items"),
        (schemas.EMBEDDINGS, {"input": LONG_TEXT}, "input", "10485761 characters"),
        (schemas.TOKEN_CHECK, {"prompts": [{"model": "m", "prompt": "p", "max_tokens": 1}] * TOO_MANY},
         "prompts", "2049 items"),
    ],
)
def test_limits_are_400s_naming_the_param_and_the_excess(schema, fields, param, says):
    with pytest.raises(errors.APIError) as caught:
        schemas.load(schema, VALID[schema] | fields)
    assert (caught.value.status, caught.value.param) == (400, param)
    assert says in caught.value.message


def test_limits_themselves_are_accepted():
    load_chat(messages=[USER] * schemas.MAX_ITEMS, n=schemas.MAX_N, max_tokens=schemas.MAX_TOKENS,
              stop=["s"] * schemas.MAX_STOPS, model="m" * schemas.MAX_NAME)
    schemas.load(schemas.COMPLETION, {"model": "m", "prompt": ["p"] * 16, "n": 128})
