"""One rule for every field's type: FastChat's (pydantic 1) coercions by default, OpenAI's JSON
types under ``compat.strict``.

The expected values are what fschat 0.2.36's request models give under pydantic 1.10.27 (run
once in a virtualenv with ``pydantic<2``); the integration tier sends the same bodies to
FastChat's own server side by side with ours.
"""

from __future__ import annotations

import pytest

from fastchat_api import errors, schemas
from fastchat_api.coercion import NotCoercible, to_bool, to_float, to_int, to_str

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
COMPLETION = {"model": "m", "prompt": "p"}
EMBEDDINGS = {"model": "m", "input": "x"}

PYDANTIC_1 = [  # (schema, field, sent, loaded as)
    (schemas.CHAT_COMPLETION, "stream", "False", False),
    (schemas.CHAT_COMPLETION, "stream", "yes", True),
    (schemas.CHAT_COMPLETION, "stream", "TRUE", True),
    (schemas.CHAT_COMPLETION, "stream", "off", False),
    (schemas.CHAT_COMPLETION, "stream", 1, True),
    (schemas.CHAT_COMPLETION, "stream", 0.0, False),
    (schemas.CHAT_COMPLETION, "n", "2", 2),
    (schemas.CHAT_COMPLETION, "n", " 2 ", 2),
    (schemas.CHAT_COMPLETION, "n", 2.9, 2),
    (schemas.CHAT_COMPLETION, "n", True, 1),
    (schemas.CHAT_COMPLETION, "max_tokens", "1_000", 1000),
    (schemas.CHAT_COMPLETION, "max_tokens", 1e3, 1000),
    (schemas.CHAT_COMPLETION, "top_k", -1.5, -1),
    (schemas.CHAT_COMPLETION, "temperature", "0.5", 0.5),
    (schemas.CHAT_COMPLETION, "temperature", True, 1.0),
    (schemas.CHAT_COMPLETION, "top_p", 1, 1.0),
    (schemas.CHAT_COMPLETION, "model", 42, "42"),
    (schemas.CHAT_COMPLETION, "user", 42, "42"),
    (schemas.CHAT_COMPLETION, "stop", 1, "1"),
    (schemas.CHAT_COMPLETION, "stop", [1, 1.5, True], ["1", "1.5", "True"]),
    (schemas.CHAT_COMPLETION, "messages", 12345, "12345"),
    (schemas.CHAT_COMPLETION, "messages", [{"role": "user", "content": 42}],
     [{"role": "user", "content": "42"}]),
    (schemas.CHAT_COMPLETION, "messages", [{"role": "user", "content": True}],
     [{"role": "user", "content": "True"}]),
    (schemas.CHAT_COMPLETION, "messages", [{"role": "user", "content": [{"type": "text", "text": 5}]}],
     [{"role": "user", "content": [{"type": "text", "text": "5"}]}]),
    (schemas.COMPLETION, "prompt", 12345, ["12345"]),
    (schemas.COMPLETION, "prompt", 1.5, ["1.5"]),
    (schemas.COMPLETION, "echo", "1", True),
    (schemas.COMPLETION, "logprobs", "3", 3),
    (schemas.COMPLETION, "logprobs", True, 1),
    (schemas.EMBEDDINGS, "input", 12345, ["12345"]),
    (schemas.EMBEDDINGS, "encoding_format", "base64", "base64"),
]
BASES = {schemas.CHAT_COMPLETION: CHAT, schemas.COMPLETION: COMPLETION, schemas.EMBEDDINGS: EMBEDDINGS}


@pytest.mark.parametrize(("schema", "field", "sent", "loaded"), PYDANTIC_1)
def test_values_are_read_as_fastchat_reads_them_by_default(schema, field, sent, loaded):
    body = schemas.load(schema, BASES[schema] | {field: sent})
    assert getattr(body, field) == loaded
    assert type(getattr(body, field)) is type(loaded)


@pytest.mark.parametrize(("schema", "field", "sent", "loaded"),
                         [case for case in PYDANTIC_1 if type(case[2]) is not type(case[3])])
def test_strict_mode_takes_only_json_types(schema, field, sent, loaded):
    if isinstance(sent, float) and isinstance(loaded, int) and sent.is_integer():
        pytest.skip("JSON Schema's integer: 1000.0 is one in both modes")
    if type(sent) is int and isinstance(loaded, float):
        pytest.skip("an integer is a JSON number in both modes")
    with pytest.raises(errors.APIError) as caught:
        schemas.load(schema, BASES[schema] | {field: sent}, strict=True)
    assert caught.value.status == 400
    assert caught.value.param.startswith(field) and caught.value.code == "invalid_value"


def test_token_check_items_are_coerced_too():
    body = schemas.load(schemas.TOKEN_CHECK, {"prompts": [{"model": 5, "prompt": 6, "max_tokens": "7"}]})
    assert (body.prompts[0].model, body.prompts[0].prompt, body.prompts[0].max_tokens) == ("5", "6", 7)


@pytest.mark.parametrize(("field", "sent"), [
    ("stream", 2), ("stream", "true "), ("stream", ""), ("stream", 0.5), ("stream", []),
    ("n", "2.0"), ("n", "1e3"), ("n", "0x10"),
    ("temperature", "0x1"), ("temperature", "nan"), ("temperature", "inf"),  # finite only
    ("n", "9" * 30),  # 64 bits at most
    ("stop", ["a", None]), ("stop", {"a": 1}), ("stop", [[1]]),
    ("model", [1]), ("user", {"a": 1}),
    ("messages", [1, 2]), ("messages", {"a": 1}), ("messages", [{"role": "user", "content": {"a": 1}}]),
    ("messages", [{"role": "user", "content": [{"type": "text", "text": None}]}]),
])
def test_what_fastchat_refuses_stays_refused(field, sent):
    with pytest.raises(errors.APIError) as caught:
        schemas.load(schemas.CHAT_COMPLETION, CHAT | {field: sent})
    assert caught.value.status == 400 and caught.value.param.startswith(field)


def test_coercion_functions_refuse_what_they_cannot_read():
    for read, value in [(to_bool, "maybe"), (to_int, 1.5e400), (to_int, "x" * 5000),
                        (to_float, 10**400), (to_str, None), (to_str, [1])]:
        with pytest.raises(NotCoercible):
            read(value, False)
    assert (to_int(5.0, True), to_float(5, True), to_bool(False, True)) == (5, 5.0, False)


@pytest.mark.parametrize(("schema", "body", "param", "code"), [
    (schemas.CHAT_COMPLETION, {"model": "m"}, "messages", "missing_required_parameter"),
    (schemas.CHAT_COMPLETION, CHAT | {"temperature": "hot"}, "temperature", "invalid_value"),
    (schemas.CHAT_COMPLETION, CHAT | {"n": 129}, "n", "invalid_value"),
    (schemas.COMPLETION, COMPLETION | {"prompt": [1, 2]}, "prompt", "unsupported_value"),
    (schemas.EMBEDDINGS, EMBEDDINGS | {"input": [[1], [2]]}, "input", "unsupported_value"),
    (schemas.EMBEDDINGS, EMBEDDINGS | {"encoding_format": "hex"}, "encoding_format", "invalid_value"),
])
def test_one_vocabulary_of_error_codes(schema, body, param, code):
    with pytest.raises(errors.APIError) as caught:
        schemas.load(schema, body)
    assert (caught.value.param, caught.value.code) == (param, code)
