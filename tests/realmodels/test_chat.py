"""Chat with SmolLM2-135M-Instruct through our server, the official ``openai`` client at
temperature 0. Each prompt was measured on the model before its assertion was written (a 135M
model is weak: these are prompts it answers reliably); the measured answers are quoted."""

from __future__ import annotations

import pytest

from devstack.realmodels import CHAT_MODEL

pytestmark = [pytest.mark.integration, pytest.mark.realmodel, pytest.mark.timeout(600)]

FRANCE = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def ask(client, messages, **params):
    return client.chat.completions.create(model=CHAT_MODEL, messages=messages, temperature=0,
                                          **params)


def test_factual_answer(real_openai):
    # measured: "The capital of France is Paris." (finish_reason "stop")
    completion = ask(real_openai, FRANCE, max_tokens=32)
    assert "Paris" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"


def test_stream_joined_is_the_whole_answer(real_openai):
    whole = ask(real_openai, FRANCE, max_tokens=32).choices[0].message.content
    stream = ask(real_openai, FRANCE, max_tokens=32, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) > 1  # measured: 'The', ' capital of', ' France is', ' Paris.'
    assert "".join(pieces) == whole


def test_second_turn_uses_the_first(real_openai):
    first = [{"role": "user", "content": "Hi! My name is Ada."}]
    # measured: "I'm Ada, the AI assistant designed to assist with creative writing. What can I
    # help you with today?" (the model takes the name for its own; it still comes from turn 1)
    reply = ask(real_openai, first, max_tokens=48).choices[0].message.content
    question = {"role": "user", "content": "What is my name? Answer in one sentence."}
    # measured: "I'm glad you're here. My name is Ada, and I'm here to help with creative writing."
    second = ask(real_openai, [*first, {"role": "assistant", "content": reply}, question],
                 max_tokens=24).choices[0].message.content
    # measured without the first turn: "I'm glad you're here, and I'm glad you're here."
    alone = ask(real_openai, [question], max_tokens=24).choices[0].message.content
    assert "Ada" in second
    assert "Ada" not in alone


def test_stop_string_cuts_where_asked(real_openai):
    choice = ask(real_openai, FRANCE, max_tokens=32, stop=["Paris"]).choices[0]
    assert choice.message.content == "The capital of France is "
    assert choice.finish_reason == "stop"


def test_max_tokens_ends_with_length(real_openai, chat_tokenizer):
    choice = ask(real_openai, FRANCE, max_tokens=3).choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == "The capital of"  # measured
    assert len(chat_tokenizer(choice.message.content).input_ids) == 3


def test_usage_is_the_tokenizers_count(real_openai, chat_tokenizer):
    completion = ask(real_openai, FRANCE, max_tokens=32)
    prompt = chat_tokenizer.apply_chat_template(FRANCE, add_generation_prompt=True)
    answer = chat_tokenizer(completion.choices[0].message.content).input_ids
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == len(prompt)  # measured: 42
    assert completion.usage.completion_tokens == len(answer)  # measured: 7
    assert completion.usage.total_tokens == len(prompt) + len(answer)
