"""Tool calling on SmolLM2-135M-Instruct (template ``smollm2``, chatml-style: the ``hermes``
format): every answer to a tools request is spec-valid whatever the model decides, a call is
always of an offered function with usable arguments under ``required`` or a named function,
and a failure is the 502, never a 200 breaking the contract. Runs where the real-model set is
present.

Measured (10 requests each, ``max_tokens: 64``, FastChat's temperature 0.7): under ``auto`` the
model answered in text 10 times in 10; under ``required`` (one function) and a named function,
with the opening naming it and starting its arguments, it called 10 times in 10."""

from __future__ import annotations

import json

import openai
import pytest
from jsonschema import Draft202012Validator

pytest.importorskip("devstack.realmodels")

from devstack.realmodels import CHAT_MODEL  # noqa: E402

from ..support.openai_spec import validate  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.realmodel, pytest.mark.timeout(900)]

PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
                                            "parameters": PARAMETERS}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
ROUNDS = 3


def _check(completion: dict, required: bool) -> str:
    validate("CreateChatCompletionResponse", completion)
    (choice,) = completion["choices"]
    calls = choice["message"].get("tool_calls")
    if required:
        assert calls and choice["finish_reason"] == "tool_calls"
    if calls:
        assert choice["finish_reason"] == "tool_calls"
        for call in calls:
            assert call["function"]["name"] == "get_weather" and call["id"].startswith("call_")
            arguments = json.loads(call["function"]["arguments"])
            if required:
                assert not list(Draft202012Validator(PARAMETERS).iter_errors(arguments))
        return "call"
    return "text"


NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize("tool_choice", ["auto", "required", NAMED])
def test_every_answer_is_spec_valid_whatever_the_model_decides(real_openai, tool_choice):
    forced = tool_choice != "auto"
    outcomes = []
    for _ in range(ROUNDS):
        try:
            completion = real_openai.chat.completions.create(
                model=CHAT_MODEL, messages=QUESTION, tools=[WEATHER], tool_choice=tool_choice, max_tokens=64)
        except openai.InternalServerError as exc:
            assert forced and exc.status_code == 502
            assert exc.body["code"] == "invalid_model_output"  # type: ignore[index]
            outcomes.append("502")
            continue
        outcomes.append(_check(completion.model_dump(exclude_unset=True), forced))
    assert len(outcomes) == ROUNDS
    if forced:  # measured 10 calls in 10
        assert "call" in outcomes, outcomes


def test_a_streamed_answer_assembles(real_openai):
    with real_openai.chat.completions.stream(model=CHAT_MODEL, messages=QUESTION, tools=[WEATHER],
                                             max_tokens=64) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls[0].function.name == "get_weather"
