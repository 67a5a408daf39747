"""Chat completions end to end: the official ``openai`` client, our server, FastChat's real
controller and model worker serving a tiny random Llama."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello! What is your name?"}]


def test_list_models(openai_client, model_name):
    assert [m.id for m in openai_client.models.list()] == [model_name]


def test_chat(openai_client, model_name):
    completion = openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=8, temperature=0
    )
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_chat_is_deterministic_at_temperature_zero(openai_client, model_name):
    answers = {
        openai_client.chat.completions.create(
            model=model_name, messages=HELLO, max_tokens=6, temperature=0
        ).choices[0].message.content
        for _ in range(2)
    }
    assert len(answers) == 1


def test_chat_stream_matches_non_stream(openai_client, model_name):
    whole = openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=8, temperature=0
    ).choices[0].message.content
    chunks = list(openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=8, temperature=0, stream=True
    ))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_chat_n2(openai_client, model_name):
    completion = openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=4, n=2
    )
    assert [c.index for c in completion.choices] == [0, 1]


def test_chat_stream_n2(openai_client, model_name):
    finished = {}
    for chunk in openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=4, n=2, stream=True
    ):
        for choice in chunk.choices:
            if choice.finish_reason:
                finished[choice.index] = choice.finish_reason
    assert sorted(finished) == [0, 1]


def test_max_tokens_is_honoured(openai_client, model_name):
    completion = openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=3, temperature=0
    )
    assert completion.usage.completion_tokens <= 3


def test_unknown_model_carries_40301(openai_client):
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(model="no-such-model", messages=HELLO)
    body = caught.value.response.json()
    assert body["code"] == 40301
    assert caught.value.code == "model_not_found"


def test_temperature_out_of_range_carries_40302(openai_client, model_name):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_name, messages=HELLO, temperature=5)
    assert caught.value.response.json()["code"] == 40302
    assert caught.value.param == "temperature"
    assert "temperature" in caught.value.message


def test_context_overflow_carries_40303(openai_client, model_name):
    long = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_name, messages=long)
    assert caught.value.response.json()["code"] == 40303


def test_string_messages_bypass_the_template(openai_client, model_name):
    completion = openai_client.chat.completions.create(
        model=model_name, messages="Once upon a time", max_tokens=4  # FastChat's extension
    )
    assert completion.choices[0].message.content is not None
