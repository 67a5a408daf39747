"""Chat log-probabilities and structured outputs on FastChat's real worker (the tiny random
Llama): what the worker actually gives, in OpenAI's shapes, whole and streamed; the prompt's
opening and the early hang-up through the real worker; guidance's plain ``gen()``."""

from __future__ import annotations

import json

import openai
import pytest

from ..support.openai_spec import validate

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "Say something."}]


def test_chat_logprobs_whole_are_openais_shape_with_the_chosen_tokens_only(openai_client, model_name):
    raw = openai_client.chat.completions.with_raw_response.create(
        model=model_name, messages=MESSAGES, max_tokens=12, temperature=0, logprobs=True, top_logprobs=5)
    completion = raw.parse()
    validate("CreateChatCompletionResponse", completion.model_dump(exclude_unset=True))
    choice = completion.choices[0]
    content = choice.logprobs.content
    assert content and all(entry.logprob <= 0 for entry in content)
    # FastChat's HF worker gives no alternatives: the answer says how many it gave.
    assert all(entry.top_logprobs == [] for entry in content)
    assert raw.headers["x-top-logprobs"] == "0"
    assert "".join(entry.token for entry in content) == choice.message.content
    assert b"".join(bytes(entry.bytes) for entry in content) == choice.message.content.encode()


def test_chat_logprobs_streamed_cover_each_chunks_text_and_match_the_whole(openai_client, model_name):
    request = dict(model=model_name, messages=MESSAGES, max_tokens=16, temperature=0, logprobs=True)
    whole = openai_client.chat.completions.create(**request).choices[0]
    text, entries = "", []
    for chunk in openai_client.chat.completions.create(**request, stream=True):
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
        if not chunk.choices:
            continue
        (choice,) = chunk.choices
        part = choice.logprobs.content if choice.logprobs else []
        assert "".join(entry.token for entry in part) == (choice.delta.content or "")
        text += choice.delta.content or ""
        entries += [(entry.token, entry.logprob) for entry in part]
    assert text == whole.message.content
    assert entries == [(entry.token, entry.logprob) for entry in whole.logprobs.content]


def test_a_json_request_is_answered_with_a_json_object_or_refused(openai_client, model_name):
    """The random model writes no JSON: whatever it writes, a 200 carries a JSON object, and
    anything else is the 502 naming the attempts."""
    try:
        completion = openai_client.chat.completions.create(
            model=model_name, messages=MESSAGES, max_tokens=24, response_format={"type": "json_object"})
    except openai.InternalServerError as exc:
        assert exc.status_code == 502 and exc.body["code"] == "invalid_model_output"
        assert "in 3 attempts" in exc.body["message"]
    else:
        assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_a_streamed_json_request_ends_in_a_finish_or_the_error_event(openai_client, model_name):
    content = ""
    try:
        for chunk in openai_client.chat.completions.create(
                model=model_name, messages=MESSAGES, max_tokens=24, stream=True,
                response_format={"type": "json_object"}):
            if chunk.choices:
                content += chunk.choices[0].delta.content or ""
    except openai.APIError as exc:
        assert "did not produce a JSON object in 1 attempt" in exc.message
        assert content.startswith("{")
    else:
        assert isinstance(json.loads(content), dict)


def test_guidance_plain_gen_works(gateway_url, model_name):
    """guidance sends ``logprobs: true, top_logprobs: 5`` with every chat request."""
    guidance = pytest.importorskip("guidance")
    lm = guidance.models.OpenAI(model_name, base_url=f"{gateway_url}/v1", api_key="EMPTY")
    with guidance.user():
        lm += "Say something."
    with guidance.assistant():
        lm += guidance.gen("answer", max_tokens=8, temperature=0)
    assert isinstance(lm["answer"], str)
