"""Empty prompts, ready prompt strings and embedding inputs.

Whether one can be answered depends on the model's tokenizer: one that adds a BOS token reads a
token in ``""`` and FastChat's worker answers (so must we: drop-in); one that adds none reads
nothing, and the worker fails with a torch error (the stand-in answers as the real HF worker
does). That case is a 400 naming the field, before anything is generated.
"""

from __future__ import annotations

import pytest

MODEL = "fake-model"

# (route, body, the param the 400 names)
EMPTY = [
    ("/v1/completions", {"prompt": ""}, "prompt"),
    ("/v1/completions", {"prompt": "", "stream": True}, "prompt"),
    ("/v1/completions", {"prompt": ["", "Hi"]}, "prompt[0]"),
    ("/v1/completions", {"prompt": ["Hi", " "]}, "prompt[1]"),
    ("/v1/completions", {"prompt": "", "max_tokens": 5}, "prompt"),
    ("/v1/chat/completions", {"messages": ""}, "messages"),
    ("/v1/chat/completions", {"messages": "", "stream": True}, "messages"),
    ("/api/v1/chat/completions", {"messages": ""}, "messages"),
    ("/v1/embeddings", {"input": ""}, "input"),
    ("/v1/embeddings", {"input": ["Hi", "", ""]}, "input[1]"),
    (f"/v1/engines/{MODEL}/embeddings", {"input": [""]}, "input"),
]


@pytest.mark.parametrize("route, body, param", EMPTY)
async def test_a_prompt_of_no_token_is_a_400_naming_the_field(client, fake, route, body, param):
    fake.token_counts.update({"": 0, " ": 0})  # a tokenizer without BOS
    resp = await client.post(route, json={"model": MODEL} | body)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert (error["param"], error["code"]) == (param, "empty_prompt")
    assert f"'{param}' is empty" in error["message"]
    assert not fake.sent("/worker_generate") and not fake.sent("/worker_generate_stream")
    assert not fake.sent("/worker_get_embeddings")


@pytest.mark.parametrize("route, body, param", EMPTY)
async def test_an_empty_prompt_the_tokenizer_reads_is_answered(client, fake, route, body, param):
    fake.token_counts.update({"": 1, " ": 1})  # a tokenizer adding BOS, as FastChat answers
    resp = await client.post(route, json={"model": MODEL} | body)
    assert resp.status == 200, await resp.text()


async def test_only_blank_prompts_cost_a_count(client, fake):
    """The count is asked for a blank prompt even where its length alone would skip it."""
    resp = await client.post("/v1/completions", json={"model": MODEL, "prompt": ["Hi", ""]})
    assert resp.status == 200
    assert [body["prompt"] for body in fake.sent("/count_token")] == [""]
    resp = await client.post("/v1/embeddings", json={"model": MODEL, "input": ["", "Hi", ""]})
    assert resp.status == 200
    assert [body["prompt"] for body in fake.sent("/count_token")] == ["", ""]
