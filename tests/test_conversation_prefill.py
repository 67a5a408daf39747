"""``Template.render`` with an instruction and a prefilled assistant turn: the prompt a guided
request (structured outputs) sends, for FastChat's own templates (fschat 0.2.36)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fastchat_api.conversation import Template

fastchat_conversation = pytest.importorskip("fastchat.conversation")

OPENING = '{"name": '
MESSAGES = [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "Who are you?"}]


def template(name: str, **changes) -> Template:
    """fschat 0.2.36's template ``name`` as its worker serves it, with ``changes``."""
    conv = fastchat_conversation.get_conv_template(name)
    fields = json.loads(json.dumps(dataclasses.asdict(conv) | {"sep_style": int(conv.sep_style)}))
    return Template.from_worker(fields | changes)


def renderable() -> list[str]:
    return sorted(name for name, conv in fastchat_conversation.conv_templates.items()
                  if conv.sep_style is not None)


@pytest.mark.parametrize(("name", "expected"), [
    ("vicuna_v1.1", "A chat between a curious user and an artificial intelligence assistant. The "
     "assistant gives helpful, detailed, and polite answers to the user's questions.\n\nANSWER IN JSON "
     "USER: Hello! ASSISTANT: Hi!</s>USER: Who are you? ASSISTANT: {\"name\": "),
    ("llama-2", "[INST] <<SYS>>\nANSWER IN JSON\n<</SYS>>\n\nHello! [/INST] Hi! </s><s>[INST] Who are you? "
     "[/INST] {\"name\": "),
    ("qwen-7b-chat", "<|im_start|>system\nYou are a helpful assistant.\n\nANSWER IN JSON<|im_end|>\n"
     "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n<|im_start|>user\n"
     "Who are you?<|im_end|>\n<|im_start|>assistant\n{\"name\": "),
])
def test_the_assistant_turn_opens_with_the_prefill_after_the_instructed_system_turn(name, expected):
    prompt = template(name).render(MESSAGES, instruction="ANSWER IN JSON", prefill=OPENING)
    assert prompt.text == expected


@pytest.mark.parametrize("name", renderable())
def test_a_prefilled_prompt_is_where_the_model_would_be_after_writing_the_prefill(name):
    """For every template: the prompt is the start of the one in which the assistant had
    already answered the prefill and more, up to the end of the prefill."""
    conv = template(name)
    prefilled = conv.render(MESSAGES, prefill=OPENING).text
    answered = conv.render([*MESSAGES, {"role": "assistant", "content": OPENING + "rest"}]).text
    assert answered.startswith(prefilled + "rest"), (prefilled[-60:], answered[-80:])
    assert conv.render(MESSAGES).text != prefilled


def test_without_a_system_slot_the_instruction_goes_to_the_last_user_turn():
    conv = template("vicuna_v1.1", system_template="Fixed system.")
    assert conv.render(MESSAGES, instruction="JSON!").text == (
        "Fixed system. USER: Hello! ASSISTANT: Hi!</s>USER: Who are you?\n\nJSON! ASSISTANT:")


def test_the_instruction_follows_the_clients_system_message():
    conv = template("vicuna_v1.1")
    messages = [{"role": "system", "content": "Be brief."}, *MESSAGES]
    assert conv.render(messages, instruction="JSON!").text.startswith("Be brief.\n\nJSON! USER: Hello!")


def test_a_message_holding_the_cut_mark_changes_nothing():
    conv = template("vicuna_v1.1")
    messages = [{"role": "user", "content": "odd \ue000 char"}]
    assert conv.render(messages, prefill="[").text.endswith("USER: odd \ue000 char ASSISTANT: [")


def test_a_ready_prompt_string_gets_the_prefill_and_no_instruction():
    assert template("vicuna_v1.1").render("raw", instruction="JSON!", prefill="{").text == "raw{"
