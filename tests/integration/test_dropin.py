"""Drop-in: a body FastChat's own server answers with 200 is answered with 200 here.

The same bodies go to FastChat's ``openai_api_server`` (fschat 0.2.36 under pydantic 1, from
``fastchat_venv``) and to our server, both in front of the session's real controller and
worker: the extra fields clients of vLLM-style servers send, the OpenAI fields FastChat
ignores, and values FastChat's pydantic coerces. Ours also names what it ignored.
"""

from __future__ import annotations

import httpx
import pytest

from devstack import fastchat_venv

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "Hello"}]
VLLM_EXTRAS = {"min_p": 0.05, "ignore_eos": False, "skip_special_tokens": True,
               "spaces_between_special_tokens": True, "chat_template_kwargs": {"enable_thinking": False},
               "include_stop_str_in_output": False, "repetition_penalty": 1.1}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
# (route, fields beyond model and a short generation, what ours names as ignored)
CASES = [
    ("/v1/chat/completions", {"messages": MESSAGES, **VLLM_EXTRAS, "echo": False, "best_of": 1},
     "min_p, ignore_eos, skip_special_tokens, spaces_between_special_tokens, chat_template_kwargs, "
     "include_stop_str_in_output, echo, best_of"),
    ("/v1/chat/completions", {"messages": MESSAGES, "seed": 42, "logit_bias": {"1": -100}, "user": "u-1"},
     "seed, logit_bias"),
    ("/v1/chat/completions", {"messages": MESSAGES, "metadata": {"k": "v"}, "store": True,
                              "service_tier": "flex", "prompt_cache_key": "k", "reasoning_effort": "low"},
     "metadata, store, service_tier, prompt_cache_key, reasoning_effort"),
    ("/v1/completions", {"prompt": "Once", **VLLM_EXTRAS, "suffix": "end", "seed": 1, "user": "u"},
     "min_p, ignore_eos, skip_special_tokens, spaces_between_special_tokens, chat_template_kwargs, "
     "include_stop_str_in_output, suffix, seed"),
    # tools, which FastChat ignores and ours offers the model (under auto, any answer is a 200)
    ("/v1/chat/completions", {"messages": MESSAGES, "tools": [WEATHER], "tool_choice": "auto",
                              "parallel_tool_calls": False}, None),
    ("/v1/chat/completions", {"messages": MESSAGES, "functions": [WEATHER["function"]], "function_call": "auto"},
     None),
    ("/v1/chat/completions", {"messages": MESSAGES, "tools": [WEATHER], "tool_choice": "none", "logprobs": True},
     None),
    ("/v1/chat/completions", {"messages": MESSAGES, "tool_choice": "auto", "logprobs": True}, None),
    # pydantic 1's coercions, as FastChat reads them
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 42}], "stream": "False",
                              "n": "1", "temperature": "0.5", "top_p": 1, "stop": [1]}, None),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": True}], "stream": "no",
                              "top_k": 1.9, "user": 7}, None),
    ("/v1/chat/completions", {"messages": 12345, "stream": 0, "stop": 5}, None),
    ("/v1/completions", {"prompt": 12345, "echo": "yes", "n": True, "logprobs": "1"}, None),
    ("/v1/completions", {"prompt": ["Once", "Twice"], "stream": "off", "presence_penalty": "0"}, None),
]


@pytest.fixture(scope="module")
def fastchat_url(stack) -> str:
    """FastChat's own server, in front of the same controller as ours."""
    return stack.start_openai_api_server(python=str(fastchat_venv.ensure())).url


def both(fastchat_url: str, gateway_url: str, path: str, body: dict) -> tuple[httpx.Response, httpx.Response]:
    return tuple(httpx.post(base + path, json=body, timeout=120) for base in (fastchat_url, gateway_url))


@pytest.mark.parametrize(("path", "fields", "ignored"), CASES)
def test_what_fastchat_answers_with_200_we_answer_with_200(fastchat_url, gateway_url, model_name,
                                                          path, fields, ignored):
    body = {"model": model_name, "max_tokens": 4, **fields}
    theirs, ours = both(fastchat_url, gateway_url, path, body)
    assert theirs.status_code == 200, theirs.text  # the premise: FastChat serves it
    assert ours.status_code == 200, ours.text
    assert ours.headers.get("X-Ignored-Params") == ignored
    answer = ours.json()
    assert len(answer["choices"]) == len(theirs.json()["choices"])


def test_a_coerced_stream_flag_streams_on_both(fastchat_url, gateway_url, model_name):
    body = {"model": model_name, "max_tokens": 4, "messages": MESSAGES, "stream": "yes"}
    theirs, ours = both(fastchat_url, gateway_url, "/v1/chat/completions", body)
    assert theirs.status_code == ours.status_code == 200
    assert theirs.headers["content-type"].startswith("text/event-stream")
    assert ours.headers["content-type"].startswith("text/event-stream")
    assert ours.text.endswith("data: [DONE]\n\n")
