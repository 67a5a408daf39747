"""``POST /v1/completions`` against the scripted stand-in: prompts verbatim, choices per prompt,
logprobs relayed, one stream for all prompts with unique choice indexes."""

from __future__ import annotations

import pytest

from ..support import openai_spec
from ..support import COMPLETION, read_events, streamed_text, with_text


async def post(client, **fields):
    return await client.post("/v1/completions", json=COMPLETION | fields)


async def test_completion_answers_with_worker_text_and_usage(client, fake):
    resp = await post(client)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    openai_spec.validate("CreateCompletionResponse", body)
    assert body["object"] == "text_completion"
    assert body["id"].startswith("cmpl-")
    assert body["choices"] == [
        {"index": 0, "text": "Hello there, friend!", "logprobs": None, "finish_reason": "stop"}
    ]
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


async def test_prompt_is_verbatim_with_fastchat_gen_params(client, fake):
    fake.conv = fake.conv | {"stop_str": "###", "stop_token_ids": [2]}
    await post(client, stop=["\n"], logprobs=1, echo=True, best_of=2)
    (params,) = fake.sent("/worker_generate")
    assert list(params) == [
        "model", "prompt", "temperature", "logprobs", "top_p", "top_k", "presence_penalty",
        "frequency_penalty", "max_new_tokens", "echo", "stop_token_ids", "best_of",
        "use_beam_search", "stop",
    ]
    assert params["prompt"] == "Once upon a time"  # no template
    assert params["max_new_tokens"] == 16  # FastChat's default for completions
    assert params["stop"] == ["\n", "###"]  # the template's stop string applies too
    assert params["stop_token_ids"] == [2]
    assert (params["logprobs"], params["echo"], params["best_of"], params["use_beam_search"]) == (1, True, 2, False)


async def test_best_of_is_left_out_when_not_given_and_null_max_tokens_means_16(client, fake):
    await post(client, max_tokens=None)
    (params,) = fake.sent("/worker_generate")
    assert "best_of" not in params and params["use_beam_search"] is False
    assert params["max_new_tokens"] == 16


async def test_list_prompts_times_n_index_prompt_major(client, fake):
    fake.replies = {"a": ["A"], "b": ["B", "b"]}
    fake.token_counts = {"a": 3, "b": 5}
    resp = await post(client, prompt=["a", "b"], n=2)
    body = await resp.json()
    assert [(c["index"], c["text"]) for c in body["choices"]] == [(0, "A"), (1, "A"), (2, "Bb"), (3, "Bb")]
    # each prompt's tokens once; completion tokens over all four choices
    assert body["usage"] == {"prompt_tokens": 8, "completion_tokens": 6, "total_tokens": 14}
    assert len(fake.sent("/worker_generate")) == 4


@pytest.fixture
async def counting(make_client):
    """A gateway that always asks the worker to count (the stand-in's counts are arbitrary)."""
    return await make_client(upstream={"skip_token_count": False})


async def test_smallest_room_is_shared_by_all_prompts(counting, fake):
    client = counting
    fake.context_length = 100
    fake.token_counts = {"short": 10, "long": 90}
    await post(client, prompt=["short", "long"], max_tokens=50)
    assert [p["max_new_tokens"] for p in fake.sent("/worker_generate")] == [10, 10]
    assert sorted(b["prompt"] for b in fake.sent("/count_token")) == ["long", "short"]


async def test_any_prompt_over_the_context_is_a_40303(counting, fake):
    client = counting
    fake.context_length = 100
    fake.token_counts = {"long": 100}
    resp = await post(client, prompt=["short", "long"])
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == 40303 and body["error"]["param"] == "prompt"
    assert fake.sent("/worker_generate") == []


async def test_echo_and_logprobs_are_relayed_in_openai_shape(client, fake):
    resp = await post(client, echo=True, logprobs=1)
    body = await resp.json()
    openai_spec.validate("CreateCompletionResponse", body)
    (choice,) = body["choices"]
    assert choice["text"] == "Once upon a timeHello there, friend!"
    assert choice["logprobs"] == {
        "tokens": ["Once upon a time", "Hello", " there", ", friend", "!"],
        "token_logprobs": [0.0, -0.5, -1.0, -1.5, -2.0],
        "top_logprobs": [{}, {}, {}, {}, {}],
        "text_offset": [0, 16, 21, 27, 35],
    }


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"guided_regex": "[a-z]+"}, "guided_regex", "'guided_regex' is not supported"),
        ({"prompt": [1, 2, 3]}, "prompt", "Token ids are not supported"),
        ({"prompt": [[1, 2], [3]]}, "prompt", "no route that turns token ids back into text"),
        ({"prompt": []}, "prompt", "non-empty list of strings"),
        ({"prompt": ["a", 1]}, "prompt", "non-empty list of strings"),
        ({"logprobs": -1}, "logprobs", "logprobs"),
    ],
)
async def test_refused_fields_are_a_clear_400(client, fake, fields, param, words):
    resp = await post(client, **fields)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["param"] == param
    assert words in body["error"]["message"]
    assert fake.sent("/worker_generate") == []


async def test_null_suffix_is_accepted(client, fake):
    assert (await post(client, suffix=None)).status == 200


async def test_ranges_are_checked_as_for_chat(client, fake):
    resp = await post(client, n=0)
    assert resp.status == 400
    assert (await resp.json())["code"] == 40302


async def test_stream_indexes_are_unique_across_prompts(client, fake):
    fake.replies = {"a": ["A1", "A2"], "b": ["B1", "B2", "B3"]}
    resp = await post(client, prompt=["a", "b"], n=2, stream=True, best_of=3)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    chunks = await read_events(resp)
    assert len(with_text(chunks)) == 10  # 2 + 2 + 3 + 3 pieces
    for chunk in chunks:
        if chunk["choices"][0]["finish_reason"]:  # OpenAI's schema has no null finish_reason
            openai_spec.validate("CreateCompletionResponse", chunk)
        assert chunk["object"] == "text_completion" and chunk["created"] and chunk["id"] == chunks[0]["id"]
    texts: dict[int, str] = {}
    finishes: dict[int, list[str]] = {}
    for chunk in chunks:
        (choice,) = chunk["choices"]
        texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
        if choice["finish_reason"]:
            finishes.setdefault(choice["index"], []).append(choice["finish_reason"])
    assert texts == {0: "A1A2", 1: "A1A2", 2: "B1B2B3", 3: "B1B2B3"}
    assert finishes == {i: ["stop"] for i in range(4)}
    # beam search is for whole answers only, as in FastChat
    assert all("best_of" not in p and "use_beam_search" not in p for p in fake.sent("/worker_generate_stream"))


async def test_stream_logprobs_are_per_chunk_not_cumulative(client, fake):
    resp = await post(client, stream=True, logprobs=0, echo=True)
    chunks = await read_events(resp)
    assert streamed_text(chunks) == "Once upon a timeHello there, friend!"
    tokens = [t for c in chunks for t in (c["choices"][0]["logprobs"] or {}).get("tokens", [])]
    offsets = [o for c in chunks for o in (c["choices"][0]["logprobs"] or {}).get("text_offset", [])]
    assert tokens == ["Once upon a time", "Hello", " there", ", friend", "!"]
    assert offsets == [0, 16, 21, 27, 35]


async def test_stream_include_usage_counts_each_prompt_once(client, fake):
    fake.token_counts = {"a": 3, "b": 5}
    resp = await post(client, prompt=["a", "b"], n=2, stream=True, stream_options={"include_usage": True})
    *chunks, last = await read_events(resp)
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 8, "completion_tokens": 16, "total_tokens": 24}
    assert len(with_text(chunks)) == 16  # four pieces for each of the four choices
    assert all(c["usage"] is None for c in chunks)


async def test_stream_without_worker_finish_reason_ends_with_stop(client, fake):
    fake.finish_reason = None  # sglang sends none
    resp = await post(client, stream=True, prompt=["a", "b"])
    chunks = await read_events(resp)
    assert [streamed_text(chunks, index) for index in (0, 1)] == ["Hello there, friend!"] * 2
    ends = [(c["choices"][0]["index"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"][0]["finish_reason"]]
    assert sorted(ends) == [(0, "stop"), (1, "stop")]


async def test_worker_error_mid_stream_is_an_error_event(client, fake):
    fake.error_frame = {"text": "CUDA out of memory", "error_code": 50002}
    fake.error_after = 2
    resp = await post(client, stream=True)
    *chunks, error = await read_events(resp)
    assert streamed_text(chunks) == "Hello there"
    assert "error code 50002 (CUDA_OUT_OF_MEMORY)" in error["error"]["message"]


async def test_unknown_model_is_a_404(client, fake):
    resp = await post(client, model="nope")
    assert resp.status == 404
    assert (await resp.json())["code"] == 40301
