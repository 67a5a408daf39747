"""The OpenAI schema helper: it accepts OpenAI's own shapes and rejects broken ones."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator

from .support.openai_spec import ValidationError, _document, components, source, validate

CHAT_COMPLETION = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1694268190,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello there, how may I assist you today?",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
}

CHAT_CHUNK = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
         "finish_reason": None}
    ],
}

COMPLETION = {
    "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
    "object": "text_completion",
    "created": 1589478378,
    "model": "gpt-3.5-turbo-instruct",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None,
         "finish_reason": "length"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}

EMBEDDINGS = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.0023064255, -0.009327292, -0.0028842222],
         "index": 0}
    ],
    "model": "text-embedding-ada-002",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}

MODELS = {
    "object": "list",
    "data": [
        {"id": "model-id-0", "object": "model", "created": 1686935002,
         "owned_by": "organization-owner"},
        {"id": "model-id-1", "object": "model", "created": 1686935002, "owned_by": "openai"},
    ],
}

ERROR = {"error": {"message": "x", "type": "invalid_request_error", "param": None,
                   "code": None}}

# What the gateway sends for errors: FastChat's flat fields plus OpenAI's "error" object.
GATEWAY_ERROR = {
    "object": "error",
    "message": "m",
    "code": 40301,
    "error": {"message": "m", "type": "invalid_request_error", "param": "model",
              "code": "model_not_found"},
}

VALID = [
    ("CreateChatCompletionResponse", CHAT_COMPLETION),
    ("CreateChatCompletionStreamResponse", CHAT_CHUNK),
    ("CreateCompletionResponse", COMPLETION),
    ("CreateEmbeddingResponse", EMBEDDINGS),
    ("ListModelsResponse", MODELS),
    ("Model", MODELS["data"][0]),
    ("ErrorResponse", ERROR),
    ("ErrorResponse", GATEWAY_ERROR),
]


def _without(body: dict, *path: str | int) -> dict:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(body: dict, value, *path: str | int) -> dict:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def test_extract_is_self_contained_and_well_formed():
    document = _document()
    assert document["source"]["repo"] == "openai/openai-openapi"
    assert len(document["source"]["commit"]) == 40
    assert {"CreateChatCompletionResponse", "CreateChatCompletionStreamResponse",
            "CreateCompletionResponse", "CreateEmbeddingResponse", "ListModelsResponse",
            "Model", "ErrorResponse", "Error"} <= components()
    text = str(document["components"])
    assert "nullable" not in text and "#/components/schemas/" not in text
    for name, schema in document["components"].items():
        Draft202012Validator.check_schema(schema)
    assert source()["path"].endswith(".yaml")


@pytest.mark.parametrize(("component", "body"), VALID, ids=[f"{c}-{i}" for i, (c, _) in
                                                            enumerate(VALID)])
def test_accepts_valid_examples(component, body):
    validate(component, body)


@pytest.mark.parametrize(
    ("component", "body"),
    [
        ("CreateChatCompletionResponse", _without(CHAT_COMPLETION, "choices")),
        ("CreateChatCompletionResponse", _without(CHAT_COMPLETION, "created")),
        ("CreateChatCompletionResponse", _with(CHAT_COMPLETION, "chat.completion.chunk",
                                               "object")),
        ("CreateChatCompletionResponse", _with(CHAT_COMPLETION, "2023-09-09", "created")),
        ("CreateChatCompletionResponse", _with(CHAT_COMPLETION, "eos", "choices", 0,
                                               "finish_reason")),
        # Non-streamed choices must say why they finished, and carry logprobs (maybe null).
        ("CreateChatCompletionResponse", _with(CHAT_COMPLETION, None, "choices", 0,
                                               "finish_reason")),
        ("CreateChatCompletionResponse", _without(CHAT_COMPLETION, "choices", 0,
                                                  "logprobs")),
        # The message must carry "refusal" (null when there is none).
        ("CreateChatCompletionResponse", _without(CHAT_COMPLETION, "choices", 0,
                                                  "message", "refusal")),
        ("CreateChatCompletionStreamResponse", _without(CHAT_CHUNK, "choices")),
        ("CreateChatCompletionStreamResponse", _without(CHAT_CHUNK, "created")),
        ("CreateChatCompletionStreamResponse", _with(CHAT_CHUNK, "chat.completion",
                                                     "object")),
        ("CreateChatCompletionStreamResponse", _without(CHAT_CHUNK, "choices", 0,
                                                        "finish_reason")),
        ("CreateCompletionResponse", _without(COMPLETION, "choices")),
        ("CreateCompletionResponse", _with(COMPLETION, "chat.completion", "object")),
        ("CreateCompletionResponse", _without(COMPLETION, "created")),
        ("CreateEmbeddingResponse", _without(EMBEDDINGS, "usage")),
        ("CreateEmbeddingResponse", _with(EMBEDDINGS, "embedding", "object")),
        ("ListModelsResponse", _with(MODELS, "models", "object")),
        ("ListModelsResponse", _without(MODELS, "data", 0, "created")),
        ("Model", _without(MODELS["data"][0], "owned_by")),
        ("ErrorResponse", {"object": "error", "message": "m", "code": 40301}),
        ("ErrorResponse", _without(ERROR, "error", "param")),
        ("ErrorResponse", _with(ERROR, 40301, "error", "code")),
    ],
)
def test_rejects_invalid_bodies(component, body):
    with pytest.raises(ValidationError):
        validate(component, body)


def test_error_message_is_readable():
    body = _with(_without(CHAT_COMPLETION, "created"), "chat.completion.chunk", "object")
    with pytest.raises(ValidationError) as caught:
        validate("CreateChatCompletionResponse", body)
    message = str(caught.value)
    assert message.startswith("body does not match OpenAI CreateChatCompletionResponse")
    assert "'created' is a required property" in message
    assert "$.object" in message
    assert "Failed validating" not in message  # not jsonschema's schema dump


def test_unknown_component_is_a_key_error():
    with pytest.raises(KeyError, match="no OpenAI schema"):
        validate("NoSuchResponse", {})


def test_gateway_error_shape_is_an_error_response():
    # Extra top-level keys are allowed: ErrorResponse has no additionalProperties: false.
    validate("ErrorResponse", GATEWAY_ERROR)


def test_nullable_fields_of_a_chat_completion():
    body = copy.deepcopy(CHAT_COMPLETION)
    body["choices"][0]["logprobs"] = None
    body["choices"][0]["message"]["refusal"] = None
    body["choices"][0]["message"]["content"] = None
    body["service_tier"] = None
    validate("CreateChatCompletionResponse", body)


def test_system_fingerprint_may_be_omitted_but_not_null():
    """The spec types ``system_fingerprint`` as a plain (optional) string, in both the
    response and the chunk: a gateway must leave it out (or send a string), not null."""
    validate("CreateChatCompletionResponse", _without(CHAT_COMPLETION, "system_fingerprint"))
    validate("CreateChatCompletionStreamResponse", _without(CHAT_CHUNK, "system_fingerprint"))
    for component, body in (("CreateChatCompletionResponse", CHAT_COMPLETION),
                            ("CreateChatCompletionStreamResponse", CHAT_CHUNK),
                            ("CreateCompletionResponse", COMPLETION)):
        with pytest.raises(ValidationError, match=r"\$\.system_fingerprint"):
            validate(component, _with(body, None, "system_fingerprint"))


def test_chunk_details_that_matter_for_the_gateway():
    # finish_reason is required in every chunk choice but may be null; logprobs optional.
    validate("CreateChatCompletionStreamResponse",
             _without(CHAT_CHUNK, "choices", 0, "logprobs"))
    # usage may be null (chunks before the last with include_usage) or absent.
    validate("CreateChatCompletionStreamResponse", _with(CHAT_CHUNK, None, "usage"))
    # the final usage-only chunk has no choices
    validate("CreateChatCompletionStreamResponse",
             _with(_with(CHAT_CHUNK, [], "choices"),
                   {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}, "usage"))
    # an empty delta, as in the last chunk of a stream
    validate("CreateChatCompletionStreamResponse",
             _with(_with(CHAT_CHUNK, {}, "choices", 0, "delta"), "stop", "choices", 0,
                   "finish_reason"))
    # finish_reason values are an enum
    for reason in ("stop", "length", "tool_calls", "content_filter", "function_call"):
        validate("CreateChatCompletionStreamResponse",
                 _with(CHAT_CHUNK, reason, "choices", 0, "finish_reason"))
    with pytest.raises(ValidationError):
        validate("CreateChatCompletionStreamResponse",
                 _with(CHAT_CHUNK, "abort", "choices", 0, "finish_reason"))


def test_completion_finish_reason_is_never_null():
    """The spec says streamed and non-streamed completions share this schema, yet its
    finish_reason is a non-nullable enum of stop/length/content_filter."""
    with pytest.raises(ValidationError):
        validate("CreateCompletionResponse", _with(COMPLETION, None, "choices", 0,
                                                   "finish_reason"))
    with pytest.raises(ValidationError):
        validate("CreateCompletionResponse", _with(COMPLETION, "tool_calls", "choices", 0,
                                                   "finish_reason"))


def test_additional_properties_are_allowed():
    validate("CreateChatCompletionResponse", _with(CHAT_COMPLETION, 1, "x_extra"))
    validate("CreateChatCompletionResponse",
             _with(CHAT_COMPLETION, "x", "choices", 0, "message", "x_extra"))
    validate("CreateChatCompletionStreamResponse", _with(CHAT_CHUNK, "x", "choices", 0,
                                                         "x_extra"))
    validate("ListModelsResponse", _with(MODELS, [], "data", 0, "permission"))
