"""Structured outputs (``response_format`` JSON modes) against the scripted stand-in: the prompt
the worker gets, the stream closed once the value is complete, validation, bounded retries
(visible in the metrics), the error when the model never conforms, streams, and the official
client's ``.parse()``."""

from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from pydantic import BaseModel

from devstack.standin import Answer
from fastchat_api.config import DEFAULT_INSTRUCTION
from fastchat_api import structured
from fastchat_api.structured import opening

from .support.openai_spec import validate
from .support import CHAT, MODEL, nested_schema, read_events, scrape, streamed_text, until, value

JSON_OBJECT = {"type": "json_object"}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "role": {"enum": ["admin", "user"]},
        "address": {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"], "additionalProperties": False},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["name", "role", "address", "tags"],
    "additionalProperties": False,
}


def json_schema(schema: dict, *, strict: bool = True, name: str = "person") -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


def attempts(samples: dict, kind: str, outcome: str) -> float:
    return value(samples, "fastchat_api_guided_attempts_total", model=MODEL, kind=kind, outcome=outcome)


async def post(client, **fields):
    return await client.post("/v1/chat/completions", json=CHAT | fields)


async def test_valid_json_at_once_is_answered_with_the_opening_and_cut_at_its_end(client, fake):
    fake.pieces = ['"a": 1', ', "b": [true]}', "\n\nHope this helps!"]
    resp = await post(client, response_format=JSON_OBJECT)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    validate("CreateChatCompletionResponse", body)
    (choice,) = body["choices"]
    assert choice["message"]["content"] == '{"a": 1, "b": [true]}'
    assert choice["message"]["refusal"] is None and choice["finish_reason"] == "stop"
    assert len(fake.sent("/worker_generate_stream")) == 1 and not fake.sent("/worker_generate")


@pytest.mark.parametrize(("schema", "expected"), [
    (PERSON, '{"name": "'),
    ({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "array"}},
                                             "required": ["b"]}}, "required": ["a"]}, '{"a": {"b": ['),
    ({"type": "object", "properties": {"kind": {"enum": ["x", "y"]}}, "required": ["kind"]}, '{"kind": "'),
    ({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}, '{"n": '),
    ({"type": "object", "properties": {"a": {}, "b": {}}, "required": ["b"]}, "{"),
    ({"type": "array"}, "["),
    ({"type": "string"}, '"'),
    ({"type": "integer"}, ""),
    ({}, ""),
])
def test_the_opening_is_as_much_of_the_value_as_the_schema_fixes(schema, expected):
    assert opening(schema) == expected


async def test_fastchats_api_v1_route_honours_it_too(client, fake):
    fake.pieces = ['"a": 1}']
    resp = await client.post("/api/v1/chat/completions", json=CHAT | {"response_format": JSON_OBJECT})
    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == '{"a": 1}'


async def test_the_prompt_carries_the_schema_in_the_system_turn_and_opens_the_answer(client, fake):
    fake.pieces = ['Ann", "role": "user", "address": {"city": "Oslo"}, "tags": ["x"]}']
    resp = await post(client, response_format=json_schema(PERSON),
                      messages=[{"role": "system", "content": "Be terse."},
                                {"role": "user", "content": "Who?"}])
    assert resp.status == 200, await resp.text()
    (params,) = fake.sent("/worker_generate_stream")
    instruction = DEFAULT_INSTRUCTION.replace("{schema}", json.dumps(PERSON))
    assert params["prompt"] == f"Be terse.\n\n{instruction} USER: Who? ASSISTANT: {{\"name\": \""
    content = (await resp.json())["choices"][0]["message"]["content"]
    assert json.loads(content)["name"] == "Ann"


async def test_a_models_own_instruction_replaces_the_default(make_client, fake):
    client = await make_client(structured={"model_instructions": {MODEL: "JSON please: {schema}"}})
    fake.pieces = ["}"]
    resp = await post(client, response_format=JSON_OBJECT)
    assert resp.status == 200
    assert fake.sent("/worker_generate_stream")[0]["prompt"].endswith(
        "questions.\n\nJSON please: {\"type\": \"object\"} USER: Hi ASSISTANT: {")


async def test_the_worker_stream_is_closed_as_soon_as_the_value_is_complete(client, fake):
    fake.answers = {MODEL: Answer(['"a": 1}', " and", " then", " more"] + [" words"] * 40, delay=0.02)}
    resp = await post(client, response_format=JSON_OBJECT)
    assert (await resp.json())["choices"][0]["message"]["content"] == '{"a": 1}'
    # The worker was hung up on before its 44 frames were out ("closed": the caller went first).
    (generation,) = [entry for entry in fake.requests if entry["path"] == "/worker_generate_stream"]
    await until(lambda: generation["ended"] is not None)
    assert generation["outcome"] == "closed"


async def test_invalid_then_valid_is_one_retry_in_the_metrics(client, fake):
    before = await scrape(client)
    fake.queue = [["Sure! Here is JSON: ", "..."], ['"ok": true}']]
    resp = await post(client, response_format=JSON_OBJECT)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == '{"ok": true}'
    assert len(fake.sent("/worker_generate_stream")) == 2
    # Usage counts the tokens of both attempts (the stand-in counts a piece as a token).
    assert body["usage"]["completion_tokens"] == 3
    after = await scrape(client)
    assert attempts(after, "json_object", "retried") - attempts(before, "json_object", "retried") == 1
    assert attempts(after, "json_object", "valid") - attempts(before, "json_object", "valid") == 1


async def test_never_valid_is_a_502_saying_how_many_attempts_were_made(make_client, fake):
    client = await make_client(structured={"max_attempts": 2})
    before = await scrape(client)
    fake.pieces = ["not json at all"]
    resp = await post(client, response_format=JSON_OBJECT)
    assert resp.status == 502
    assert resp.headers["x-should-retry"] == "false"
    body = await resp.json()
    assert body["error"]["code"] == "invalid_model_output" and body["code"] == 50001
    assert "did not produce a JSON object in 2 attempts" in body["error"]["message"]
    assert "not JSON" in body["error"]["message"]
    assert len(fake.sent("/worker_generate_stream")) == 2
    after = await scrape(client)
    assert attempts(after, "json_object", "retried") - attempts(before, "json_object", "retried") == 1
    assert attempts(after, "json_object", "failed") - attempts(before, "json_object", "failed") == 1


async def test_a_value_cut_short_by_max_tokens_says_so(client, fake):
    fake.pieces, fake.finish_reason = ['"a": [1, 2'], "length"
    resp = await post(client, response_format=JSON_OBJECT, max_tokens=3)
    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "in 3 attempts" in message and "ended before the JSON value did" in message
    assert "reached max_tokens" in message


@pytest.mark.parametrize(("pieces", "problem"), [
    (['Ann", "role": "root", "address": {"city": "Oslo"}, "tags": ["x"]}'], "$.role"),
    (['Ann", "role": "user", "address": {}, "tags": ["x"]}'], "'city' is a required property"),
    (['Ann", "role": "user", "address": {"city": "Oslo"}, "tags": []}'], "$.tags"),
    (['Ann", "role": "user", "tags": ["x"]}'], "'address' is a required property"),
    (['Ann", "role": "user", "address": {"city": 7}, "tags": ["x"]}'], "$.address.city"),
])
async def test_strict_schema_violations_are_never_answered(client, fake, pieces, problem):
    fake.pieces = pieces
    resp = await post(client, response_format=json_schema(PERSON))
    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "JSON matching the schema 'person' in 3 attempts" in message and problem in message


async def test_a_nested_schema_is_answered_when_the_model_conforms(client, fake):
    fake.queue = [['Ann", "role": "boss", "address": {"city": "Oslo"}, "tags": ["x"]}'],
                  ['Ann", "role": "admin", "address": {"city": "Oslo"}, "tags": ["x", "y"]}']]
    resp = await post(client, response_format=json_schema(PERSON))
    assert resp.status == 200, await resp.text()
    content = json.loads((await resp.json())["choices"][0]["message"]["content"])
    assert content == {"name": "Ann", "role": "admin", "address": {"city": "Oslo"}, "tags": ["x", "y"]}


async def test_non_strict_answers_json_that_misses_the_schema_when_no_attempt_does_better(client, fake):
    before = await scrape(client)
    fake.pieces = ['Ann"}']
    resp = await post(client, response_format=json_schema(PERSON, strict=False))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == '{"name": "Ann"}'
    assert len(fake.sent("/worker_generate_stream")) == 3
    after = await scrape(client)
    assert attempts(after, "json_schema", "accepted") - attempts(before, "json_schema", "accepted") == 1
    # Not JSON at all is not acceptable, strict or not.
    fake.pieces = ["oops ]"]
    assert (await post(client, response_format=json_schema(PERSON, strict=False))).status == 502


async def test_each_choice_is_retried_on_its_own(client, fake):
    fake.queue = [['"n": 1}'], ["nope"], ['"n": 2}']]
    resp = await post(client, response_format=JSON_OBJECT, n=2)
    assert resp.status == 200, await resp.text()
    contents = sorted(choice["message"]["content"] for choice in (await resp.json())["choices"])
    assert contents == ['{"n": 1}', '{"n": 2}']


async def test_a_streamed_object_sends_the_opening_first_and_ends_at_the_value(client, fake):
    fake.pieces = ['"a"', ": 1", "}", " trailing", " words"]
    resp = await post(client, response_format=JSON_OBJECT, stream=True)
    assert resp.status == 200
    events = await read_events(resp)
    for chunk in events:
        validate("CreateChatCompletionStreamResponse", chunk)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "{"}
    assert streamed_text(events) == '{"a": 1}'
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


async def test_a_stream_that_does_not_conform_ends_with_an_error_event_and_no_finish(client, fake):
    before = await scrape(client)
    fake.pieces = ['"a": ', "nonsense", "}"]
    resp = await post(client, response_format=JSON_OBJECT, stream=True)
    assert resp.status == 200
    events = await read_events(resp)
    assert all(choice["finish_reason"] is None for e in events[:-1] for choice in e["choices"])
    error = events[-1]["error"]
    assert error["code"] == "invalid_model_output" and "in 1 attempt;" in error["message"]
    assert len(fake.sent("/worker_generate_stream")) == 1
    after = await scrape(client)
    assert attempts(after, "json_object", "failed") - attempts(before, "json_object", "failed") == 1


async def test_a_ready_prompt_string_gets_the_opening_appended(client, fake):
    fake.pieces = ['"x": 0}']
    resp = await post(client, messages="Give JSON:", response_format=JSON_OBJECT)
    assert resp.status == 200
    assert fake.sent("/worker_generate_stream")[0]["prompt"] == "Give JSON:{"


async def test_text_format_and_no_format_cost_nothing_more(client, fake):
    for fields in ({}, {"response_format": {"type": "text"}}):
        resp = await post(client, **fields)
        assert resp.status == 200
    assert len(fake.sent("/worker_generate")) == 2 and not fake.sent("/worker_generate_stream")
    assert all("JSON" not in params["prompt"] for params in fake.sent("/worker_generate"))


DEEP = nested_schema(300)  # past what jsonschema can check

@pytest.mark.parametrize(("response_format", "param"), [
    ({"type": "xml"}, "response_format"),
    ({"type": "json_schema"}, "response_format.json_schema"),
    ({"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}, "response_format.json_schema.name"),
    ({"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "bogus"}}},
     "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "p", "schema": {"$ref": "https://example.com/s"}}},
     "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "p", "schema": {"$ref": "#/$defs/missing"}}},
     "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "p", "schema": DEEP}}, "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "p", "schema": [], "strict": True}},
     "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "p", "schema": {}, "strict": "yes"}},
     "response_format.json_schema.strict"),
])
async def test_a_bad_response_format_is_a_400_naming_the_key(client, fake, response_format, param):
    resp = await post(client, response_format=response_format)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == param and error["code"] == "invalid_value"
    assert not fake.sent("/worker_generate_stream")


# -- the official client -------------------------------------------------------------------------


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    role: Literal["admin", "user"]
    address: Address
    tags: list[str]


PERSON_PIECES = ['Ann", "role": "admin", ', '"address": {"city": "Oslo"}, ', '"tags": ["a", "b"]}', " Done."]


@pytest.fixture
async def async_openai(client):
    async with openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="EMPTY", max_retries=0) as oa:
        yield oa


async def test_the_official_clients_parse_gives_the_pydantic_model(async_openai, fake):
    fake.queue = [["I think", " it is Ann"], PERSON_PIECES]
    completion = await async_openai.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Who?"}], response_format=Person)
    message = completion.choices[0].message
    assert message.parsed == Person(name="Ann", role="admin", address=Address(city="Oslo"), tags=["a", "b"])
    assert message.refusal is None
    sent = fake.sent("/worker_generate_stream")[-1]["prompt"]
    assert '"additionalProperties": false' in sent and sent.endswith('ASSISTANT: {"name": "')


async def test_the_official_clients_stream_parses_as_it_goes(async_openai, fake):
    fake.pieces = PERSON_PIECES
    async with async_openai.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "Who?"}], response_format=Person,
    ) as stream:
        partial = [event.parsed for event in [e async for e in stream]
                   if event.type == "content.delta" and event.parsed]
        final = await stream.get_final_completion()
    assert partial and partial[0] == {"name": "Ann", "role": "admin"}
    assert final.choices[0].message.parsed.address.city == "Oslo"


async def test_the_official_client_raises_the_in_band_error_of_a_stream(async_openai, fake):
    fake.pieces = ['Ann", "role": "nobody"', "}"]
    with pytest.raises(openai.APIError, match="did not produce JSON matching the schema 'Person'"):
        async with async_openai.chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": "Who?"}], response_format=Person,
        ) as stream:
            async for _ in stream:
                pass


async def test_the_official_client_raises_the_502_once(async_openai, fake):
    fake.pieces = ["never JSON"]
    with pytest.raises(openai.InternalServerError, match="invalid_model_output|did not produce"):
        await async_openai.chat.completions.parse(
            model=MODEL, messages=[{"role": "user", "content": "Who?"}], response_format=Person)
    assert len(fake.sent("/worker_generate_stream")) == 3


# -- LangChain -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
async def test_langchains_with_structured_output(client, fake, method):
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(model=MODEL, base_url=str(client.make_url("/v1")),
                                      api_key="EMPTY", max_retries=0)
    fake.pieces = PERSON_PIECES if method == "json_schema" else ['"name": "Ann", "role": "admin", ',
                                                                 '"address": {"city": "Oslo"}, "tags": []}']
    structured_llm = llm.with_structured_output(Person, method=method)
    person = await structured_llm.ainvoke("Who? Answer in JSON.")
    assert isinstance(person, Person) and person.address.city == "Oslo"
    (params,) = fake.sent("/worker_generate_stream")
    opening = '{"name": "' if method == "json_schema" else "{"
    assert params["prompt"].endswith(f"ASSISTANT: {opening}")


@pytest.mark.parametrize("schema", [
    PERSON,
    {"type": "objekt"},
    {"type": "object", "minProperties": -1, "properties": {"a": {"type": 3}}},
    {"$ref": "https://example.com/s.json"},
    {"$defs": {"a": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/a"}}},
    nested_schema(150),
    {"enum": [2 ** 70]},
])
def test_a_kept_verdict_on_a_schema_is_the_verdict_of_checking_it(schema):
    assert structured.schema_problem(schema) == structured.schema_problem(schema) == structured._problem(schema)


def test_a_schema_sent_again_is_not_checked_again(monkeypatch):
    """Checking costs about 0.6 ms and clients send the same schemas with every request."""
    checked = []
    monkeypatch.setattr(structured, "_problem", lambda schema: checked.append(schema))
    schema = {"type": "object", "properties": {"kept": {"type": "string"}}}
    for _ in range(3):
        assert structured.schema_problem(dict(schema)) is None
    assert checked == [schema]
    big = {"type": "object", "description": "x" * structured.KEPT_SCHEMA_BYTES}
    structured.schema_problem(big), structured.schema_problem(big)
    assert checked == [schema, big, big]  # too large to keep: checked each time
