"""The parameter policy (``compat.strict``): FastChat's by default, OpenAI's when strict.

By default a field the server does not honour is accepted, ignored and named (header, access
log, metric); strict mode refuses every unknown or unsupported field in one 400. Fields whose
absence would change the shape of the answer are refused in both modes.
"""

from __future__ import annotations

import json

import pytest

from fastchat_api import metrics

from .support import CHAT, delta, exchange, request, scrape

COMPLETION = {"model": "fake-model", "prompt": "Once"}
# What clients written for vLLM-style servers add (FastChat's server ignores them all).
VLLM_EXTRAS = {"min_p": 0.05, "ignore_eos": False, "skip_special_tokens": True,
               "chat_template_kwargs": {"enable_thinking": False}, "echo": False, "best_of": 1,
               "seed": 42, "logit_bias": {"50256": -100}}


@pytest.fixture
async def strict(make_client):
    return await make_client(compat={"strict": True})


async def test_vllm_style_extras_are_accepted_ignored_and_named(client, fake):
    resp = await client.post("/v1/chat/completions", json=CHAT | VLLM_EXTRAS | {"user": "u-1"})
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Ignored-Params"] == ", ".join(VLLM_EXTRAS)
    await client.post("/v1/chat/completions", json=CHAT)
    with_extras, without = fake.sent("/worker_generate")
    assert with_extras == without  # nothing of them reaches the worker


async def test_no_header_when_nothing_is_ignored(client):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"seed": None, "logit_bias": {},
                                                                  "tools": [], "user": "u-1"})
    assert resp.status == 200
    assert "X-Ignored-Params" not in resp.headers


async def test_streams_and_errors_name_ignored_fields_too(client):
    stream = await client.post("/v1/chat/completions", json=CHAT | {"stream": True, "min_p": 0.1})
    assert stream.content_type == "text/event-stream"
    assert stream.headers["X-Ignored-Params"] == "min_p"
    await stream.read()
    error = await client.post("/v1/completions", json=COMPLETION | {"model": "nope", "suffix": "s"})
    assert error.status == 404 and error.headers["X-Ignored-Params"] == "suffix"


async def test_completion_suffix_and_seed_are_ignored_by_default(client):
    resp = await client.post("/v1/completions", json=COMPLETION | {"suffix": "end", "seed": 1})
    assert resp.status == 200 and resp.headers["X-Ignored-Params"] == "suffix, seed"


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", CHAT | {"modalities": ["text", "audio"]}, "modalities"),
    ("/v1/chat/completions", CHAT | {"audio": {"voice": "alloy"}}, "audio"),
    ("/v1/chat/completions", CHAT | {"guided_json": {"type": "object"}}, "guided_json"),
    ("/v1/completions", COMPLETION | {"guided_choice": ["a", "b"]}, "guided_choice"),
    ("/v1/embeddings", {"model": "fake-model", "input": "x", "dimensions": 8}, "dimensions"),
])
async def test_fields_that_change_the_answers_shape_stay_refused_by_default(client, path, body, param):
    resp = await client.post(path, json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == param and error["code"] in ("unsupported_parameter", "unsupported_value")


async def test_every_refused_field_is_named_at_once(client):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"audio": {"voice": "alloy"}, "guided_json": {}})
    error = (await resp.json())["error"]
    assert "'audio' is not supported" in error["message"] and "'guided_json' is not supported" in error["message"]
    assert error["param"] == "audio"


async def test_strict_names_every_unknown_and_unsupported_field_at_once(strict):
    body = CHAT | {"min_p": 0.1, "frobnicate": 1, "seed": 7, "logit_bias": {"1": 2}}
    resp = await strict.post("/v1/chat/completions", json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["message"].startswith("Unrecognized request arguments supplied: min_p, frobnicate. ")
    assert "'seed' is not supported" in error["message"]
    assert "'logit_bias' is not supported" in error["message"]
    assert (error["param"], error["code"]) == ("min_p", "unknown_parameter")


async def test_strict_refuses_unsupported_fields_with_their_code(strict):
    resp = await strict.post("/v1/completions", json=COMPLETION | {"suffix": "s"})
    error = (await resp.json())["error"]
    assert (resp.status, error["param"], error["code"]) == (400, "suffix", "unsupported_parameter")


async def test_strict_accepts_fields_that_never_change_the_answer_and_names_them(strict):
    body = CHAT | {"metadata": {"a": "b"}, "prompt_cache_key": "k", "store": True, "user": "u"}
    resp = await strict.post("/v1/chat/completions", json=body)
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Ignored-Params"] == "metadata, prompt_cache_key, store"


async def test_strict_refuses_what_openai_does_not_define_on_a_route(strict):
    resp = await strict.post("/v1/completions", json=COMPLETION | {"metadata": {}})
    assert (await resp.json())["error"]["code"] == "unknown_parameter"


async def test_client_given_names_are_escaped_and_bounded_on_the_wire(client):
    """Raw HTTP: unknown names with control characters, commas or non-ASCII text cannot break
    or inject headers; thousands of them give one bounded header."""
    names = ["a\r\nX-Evil: 1", "b,c", "é", *(f"n{i}" for i in range(2000))]
    body = json.dumps(CHAT | dict.fromkeys(names, 1)).encode()
    answer = await exchange(client, request("POST", "/v1/chat/completions",
                                            {"Host": "x", "Content-Type": "application/json"}, body))
    assert answer.status == 200
    assert all(f"{name}: {value}".isascii() for name, value in answer.headers)
    (line,) = [f"{name}: {value}" for name, value in answer.headers if name == "X-Ignored-Params"]
    assert line.startswith("X-Ignored-Params: a%0D%0AX-Evil:%201, b%2Cc, %C3%A9, n0, n1,")
    assert line.endswith(" more") and len(line) < 600
    assert not answer.values("X-Evil")


async def test_cors_lets_browsers_read_the_header(client):
    resp = await client.post("/v1/chat/completions", json=CHAT | {"seed": 1},
                             headers={"Origin": "https://app.example"})
    assert "X-Ignored-Params" in resp.headers["Access-Control-Expose-Headers"]


async def test_metric_counts_ignored_fields_by_known_name_and_others_as_one(client):
    before = await scrape(client)
    await client.post("/v1/chat/completions", json=CHAT | {"min_p": 0.1, "seed": 3, "x-mine": 1, "y": 2})
    after = await scrape(client)
    name = "fastchat_api_ignored_params_total"
    assert delta(before, after, name, param="min_p") == 1
    assert delta(before, after, name, param="seed") == 1
    assert delta(before, after, name, param=metrics.OTHER) == 2
    assert delta(before, after, name, param="x-mine") == 0


async def test_access_log_carries_ignored_fields_and_the_user(client, access_lines):
    await client.post("/v1/chat/completions", json=CHAT | {"min_p": 0.1, "seed": 3, "user": "u-7"})
    (line,) = access_lines()
    entry = json.loads(line)
    assert (entry["ignored"], entry["user"]) == ("min_p, seed", "u-7")
