"""The rest of the API surface end to end: completions, embeddings, FastChat's /api/v1 routes and
images, through the official ``openai`` client, our server, and FastChat's real controller and
model worker (a tiny random Llama, text only)."""

from __future__ import annotations

import base64
import math
from array import array

import openai
import pytest

from devstack.processes import http_post_json

pytestmark = pytest.mark.integration

PROMPT = "Once upon a time"
PROMPTS = ["Once upon a time", "The quick brown fox"]
NINE = [f"Sentence number {i} about " + "tokens " * i for i in range(9)]


def texts_by_index(stream) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Each choice's text and finish reasons, from a completions stream."""
    texts: dict[int, str] = {}
    finishes: dict[int, list[str]] = {}
    for chunk in stream:
        assert chunk.object == "text_completion" and chunk.created
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finishes.setdefault(choice.index, []).append(choice.finish_reason)
    return texts, finishes


# -- /v1/completions ---------------------------------------------------------------------------


def test_completion(openai_client, model_name):
    completion = openai_client.completions.create(model=model_name, prompt=PROMPT, temperature=0)
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    (choice,) = completion.choices
    assert choice.index == 0 and isinstance(choice.text, str)
    assert choice.finish_reason in ("stop", "length")
    assert choice.logprobs is None
    usage = completion.usage
    assert 0 < usage.completion_tokens <= 16  # FastChat's default max_tokens for completions
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_completion_echo_and_logprobs(openai_client, model_name):
    completion = openai_client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=5, temperature=0, echo=True, logprobs=1
    )
    (choice,) = completion.choices
    assert choice.text.startswith(PROMPT)
    logprobs = choice.logprobs
    count = len(logprobs.tokens)
    assert count >= completion.usage.prompt_tokens  # echo: prompt tokens are included
    assert len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == len(logprobs.text_offset) == count
    assert logprobs.token_logprobs[0] is None  # the first prompt token has none
    assert all(lp <= 0 for lp in logprobs.token_logprobs[1:])
    assert logprobs.text_offset[0] == 0
    assert logprobs.text_offset == sorted(logprobs.text_offset)


def test_completion_stream_matches_non_stream(openai_client, model_name):
    whole = openai_client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=8, temperature=0
    ).choices[0].text
    texts, finishes = texts_by_index(openai_client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=8, temperature=0, stream=True,
    ))
    assert texts == {0: whole}
    assert len(finishes[0]) == 1


def test_completion_stream_logprobs_add_up(openai_client, model_name):
    whole = openai_client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=6, temperature=0, logprobs=1
    ).choices[0].logprobs
    tokens: list[str] = []
    for chunk in openai_client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=6, temperature=0, logprobs=1, stream=True
    ):
        if chunk.choices[0].logprobs:
            tokens += chunk.choices[0].logprobs.tokens
    assert tokens == whole.tokens  # each chunk carries its own tokens, not all so far


def test_completion_n2_and_list_prompts(openai_client, model_name):
    completion = openai_client.completions.create(
        model=model_name, prompt=PROMPTS, n=2, max_tokens=4, temperature=0
    )
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    singles = [
        openai_client.completions.create(model=model_name, prompt=p, max_tokens=4, temperature=0)
        for p in PROMPTS
    ]
    # choice index = prompt * n + k; greedy, so both choices of a prompt are its single answer
    assert [c.text for c in completion.choices] == [s.choices[0].text for s in singles for _ in range(2)]
    # each prompt counted once, completion tokens over all four choices
    assert completion.usage.prompt_tokens == sum(s.usage.prompt_tokens for s in singles)
    assert completion.usage.completion_tokens == 2 * sum(s.usage.completion_tokens for s in singles)


def test_completion_stream_list_prompts_n2_has_unique_indexes(openai_client, model_name):
    whole = openai_client.completions.create(
        model=model_name, prompt=PROMPTS, n=2, max_tokens=4, temperature=0
    )
    texts, finishes = texts_by_index(openai_client.completions.create(
        model=model_name, prompt=PROMPTS, n=2, max_tokens=4, temperature=0, stream=True,
        stream_options={"include_usage": True},
    ))
    assert texts == {c.index: c.text for c in whole.choices}
    assert sorted(finishes) == [0, 1, 2, 3] and all(len(f) == 1 for f in finishes.values())


def test_completion_stream_include_usage(openai_client, model_name):
    *chunks, last = openai_client.completions.create(
        model=model_name, prompt=PROMPTS, max_tokens=3, stream=True,
        stream_options={"include_usage": True},
    )
    assert last.choices == [] and last.usage.prompt_tokens > 0
    assert {c.choices[0].index for c in chunks} == {0, 1}  # each prompt's choice, not only usage
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"extra_body": {"guided_choice": ["a", "b"]}}, "guided_choice"), ({"prompt": [1, 2, 3]}, "prompt")],
)
def test_completion_refusals(openai_client, model_name, fields, param):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(**{"model": model_name, "prompt": PROMPT} | fields)
    assert caught.value.param == param


# -- embeddings --------------------------------------------------------------------------------


@pytest.mark.parametrize("inputs", [["Hello world"], NINE], ids=["one", "nine"])
def test_embeddings_base64_decodes_to_the_floats(openai_client, model_name, inputs):
    floats = openai_client.embeddings.create(model=model_name, input=inputs, encoding_format="float")
    default = openai_client.embeddings.create(model=model_name, input=inputs)  # the client asks base64
    explicit = openai_client.embeddings.create(model=model_name, input=inputs, encoding_format="base64")
    assert [d.index for d in floats.data] == list(range(len(inputs)))
    vectors = [d.embedding for d in floats.data]
    assert [d.embedding for d in default.data] == vectors
    # asked explicitly, the client hands the base64 over as is: little-endian float32
    assert [array("f", base64.b64decode(d.embedding)).tolist() for d in explicit.data] == vectors
    for vector in vectors:
        assert len(vector) == 64  # the tiny Llama's hidden size
        assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-4)  # L2-normalised
    assert floats.model == model_name
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 0


def test_embeddings_of_nine_match_one_by_one_order(openai_client, model_name):
    """Batches come back in input order: input i's vector is the one for input i."""
    nine = openai_client.embeddings.create(model=model_name, input=NINE, encoding_format="float")
    last_alone = openai_client.embeddings.create(model=model_name, input=NINE[8:], encoding_format="float")
    # NINE[8] is the only input of the third batch (4 + 4 + 1), so it was embedded alone there too
    assert nine.data[8].embedding == last_alone.data[0].embedding


def test_engines_embeddings_route(gateway_url, model_name):
    body = http_post_json(f"{gateway_url}/v1/engines/{model_name}/embeddings",
                          {"input": ["a", "b"]}, timeout=60)
    assert body["model"] == model_name
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(len(d["embedding"]) == 64 for d in body["data"])


def test_embeddings_dimensions_is_refused(openai_client, model_name):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.embeddings.create(model=model_name, input="x", dimensions=8)
    assert caught.value.param == "dimensions"


# -- /api/v1 -----------------------------------------------------------------------------------


def test_token_check(gateway_url, model_name):
    body = http_post_json(f"{gateway_url}/api/v1/token_check", {"prompts": [
        {"model": model_name, "prompt": PROMPT, "max_tokens": 10},
        {"model": model_name, "prompt": PROMPT, "max_tokens": 4096},
    ]}, timeout=60)
    fits, overflows = body["prompts"]
    assert fits["fits"] is True and overflows["fits"] is False
    assert fits["contextLength"] == 2048 and fits["tokenCount"] > 0
    assert fits["tokenCount"] == overflows["tokenCount"]


def test_api_v1_chat_completions(gateway_url, model_name):
    client = openai.OpenAI(base_url=f"{gateway_url}/api/v1", api_key="EMPTY", max_retries=0, timeout=120)
    completion = client.chat.completions.create(
        model=model_name, messages=[{"role": "user", "content": "Hello!"}], max_tokens=5,
        temperature=0, extra_body={"repetition_penalty": 1.2},
    )
    assert completion.object == "chat.completion"
    assert isinstance(completion.choices[0].message.content, str)
    chunks = list(client.chat.completions.create(
        model=model_name, messages=[{"role": "user", "content": "Hello!"}], max_tokens=5, stream=True,
    ))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


# -- images ------------------------------------------------------------------------------------


def test_image_to_a_text_only_worker_is_a_clear_400(openai_client, model_name):
    message = {"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_name, messages=[message], max_tokens=4)
    assert caught.value.code == "unsupported_value"
    assert "does not accept images" in caught.value.message
