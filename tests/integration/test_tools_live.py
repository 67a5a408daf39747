"""Tool calling through FastChat's real worker (the tiny random Llama, template
``vicuna_v1.1``: the ``json`` format): the prompt path end to end, whole and streamed, a round
trip with a tool result, and a required call that the random model cannot write ending in the
502, never a 200 breaking the contract."""

from __future__ import annotations

import openai
import pytest

from ..support.openai_spec import validate

pytestmark = pytest.mark.integration

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HISTORY = [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "12 C"},
]


def test_a_tools_request_with_history_is_answered_whole_and_streamed(openai_client, model_name):
    completion = openai_client.chat.completions.create(
        model=model_name, messages=HISTORY, tools=[WEATHER], max_tokens=12)
    validate("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    assert completion.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert completion.usage.prompt_tokens > 50  # the definitions and the history went in
    chunks = list(openai_client.chat.completions.create(
        model=model_name, messages=HISTORY, tools=[WEATHER], max_tokens=12, stream=True))
    assert chunks
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))


def test_a_required_call_the_model_cannot_write_is_a_502(openai_client, model_name):
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client.chat.completions.create(
            model=model_name, messages=HISTORY[:1], tools=[WEATHER], tool_choice="required", max_tokens=8)
    assert caught.value.status_code == 502 and "invalid_model_output" in str(caught.value.body)
