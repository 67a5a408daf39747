"""Empty prompts against FastChat's real worker: the tiny Llama's tokenizer adds a BOS token, so
it reads one token in ``""`` and FastChat answers these requests; so must we (the 400 is only
for a tokenizer that reads no token, see tests/routes/test_empty_prompts.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_an_empty_completion_prompt_is_answered(openai_client, model_name):
    completion = openai_client.completions.create(model=model_name, prompt=["", "Hi"], max_tokens=4)
    assert len(completion.choices) == 2
    assert completion.usage.prompt_tokens >= 2  # the BOS of "" and "Hi"'s tokens


def test_an_empty_chat_prompt_string_is_answered(openai_client, model_name):
    chat = openai_client.chat.completions.create(model=model_name, messages="", max_tokens=4)
    assert chat.choices[0].message.role == "assistant"


def test_an_empty_embedding_input_is_answered(openai_client, model_name):
    embedded = openai_client.embeddings.create(model=model_name, input=["", "Hi"],
                                               encoding_format="float")
    assert len(embedded.data) == 2 and all(item.embedding for item in embedded.data)
