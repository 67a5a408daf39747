"""The calls of FastChat's own API test script (``tests/test_openai_api.py`` in lm-sys/FastChat),
made the way it makes them: the ``openai`` module configured globally, every model listed,
completions with logprobs, streams read chunk by chunk, embeddings through the client's
default base64, then the raw HTTP bodies of its curl phase. A drop-in must pass all of it."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def module_openai(gateway_url, monkeypatch):
    """The module-level client, as the script sets it up."""
    monkeypatch.setattr(openai, "api_key", "EMPTY")
    monkeypatch.setattr(openai, "base_url", f"{gateway_url}/v1/")
    monkeypatch.setattr(openai, "max_retries", 0)
    return openai


def test_the_script_runs_against_every_model(module_openai):
    models = [model.id for model in module_openai.models.list().data]
    assert models
    for model in models:
        completion = module_openai.completions.create(
            model=model, prompt="Once upon a time", logprobs=1, max_tokens=64, temperature=0
        )
        assert isinstance(completion.choices[0].text, str)
        assert len(completion.choices[0].logprobs.token_logprobs) > 0

        texts = [chunk.choices[0].text for chunk in module_openai.completions.create(
            model=model, prompt="Once upon a time", max_tokens=64, temperature=0, stream=True
        )]
        assert "".join(texts) == completion.choices[0].text

        chat = module_openai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hello! What is your name?"}],
            temperature=0,
        )
        assert isinstance(chat.choices[0].message.content, str)

        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in module_openai.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Hello! What is your name?"}],
                temperature=0, stream=True,
            )
        )
        assert streamed == chat.choices[0].message.content

        embedding = module_openai.embeddings.create(model=model, input="Hello world!")
        assert len(embedding.data[0].embedding) > 0


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as resp:
        assert resp.status == 200
        return json.load(resp)


def test_the_script_curl_phase(gateway_url, model_name):
    with urllib.request.urlopen(f"{gateway_url}/v1/models", timeout=30) as resp:
        assert json.load(resp)["data"][0]["id"] == model_name
    chat = _post(f"{gateway_url}/v1/chat/completions", {
        "model": model_name, "messages": [{"role": "user", "content": "Hello! What is your name?"}]})
    assert chat["choices"][0]["message"]["role"] == "assistant"
    completion = _post(f"{gateway_url}/v1/completions", {
        "model": model_name, "prompt": "Once upon a time", "max_tokens": 41, "temperature": 0.5})
    assert completion["usage"]["completion_tokens"] <= 41
    embedding = _post(f"{gateway_url}/v1/embeddings", {"model": model_name, "input": "Hello world!"})
    assert isinstance(embedding["data"][0]["embedding"][0], float)
