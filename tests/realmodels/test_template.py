"""The ``smollm2`` conversation template devstack.worker registers renders what SmolLM2's own
chat template (in its tokenizer) renders, and stops only on SmolLM2's end of turn."""

from __future__ import annotations

import pytest

from devstack.worker import SMOLLM2_TEMPLATE, register_smollm2_template

pytestmark = [pytest.mark.integration, pytest.mark.realmodel]

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada!"},
     {"role": "user", "content": "What is my name?"}],
]


@pytest.fixture(autouse=True)
def smollm2(monkeypatch):
    """The template registered in a copy of FastChat's registry, restored afterwards (other
    tests count FastChat's own templates)."""
    import fastchat.conversation

    monkeypatch.setattr(fastchat.conversation, "conv_templates",
                        dict(fastchat.conversation.conv_templates))
    register_smollm2_template()


def fastchat_prompt(messages):
    from fastchat.conversation import get_conv_template

    conv = get_conv_template(SMOLLM2_TEMPLATE)
    for message in messages:
        if message["role"] == "system":
            conv.set_system_message(message["content"])
        else:
            conv.append_message(conv.roles[message["role"] == "assistant"], message["content"])
    conv.append_message(conv.roles[1], None)
    return conv.get_prompt()


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_renders_the_models_own_template(messages, chat_tokenizer):
    assert fastchat_prompt(messages) == chat_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True)


def test_stops_on_the_end_of_turn_only(chat_tokenizer):
    from fastchat.conversation import get_conv_template

    conv = get_conv_template(SMOLLM2_TEMPLATE)
    assert conv.stop_token_ids == [chat_tokenizer.eos_token_id]
    assert chat_tokenizer.convert_ids_to_tokens(conv.stop_token_ids) == ["<|im_end|>"]
    assert conv.stop_str == "<|im_end|>"
