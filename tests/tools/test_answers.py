"""Tool calls answered: the stand-in scripted per format, the official client (whole,
streamed, its stream helper), parallel and named calls, retries under ``required``, a round
trip, LangChain's ``bind_tools``, the legacy ``functions``; every body and chunk validated
against OpenAI's schemas."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from ..support import (CHAT, LLAMA3_CONV, MODEL, fastchat_conv, read_events, scrape, streamed_text, text_of,
                       value, with_text)
from ..support.openai_spec import validate

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
QUESTION = [{"role": "user", "content": "Weather in Oslo?"}]
OSLO = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
BERGEN = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Bergen"}}\n</tool_call>'


@pytest.fixture
def hermes(fake):
    fake.conv = fastchat_conv("qwen-7b-chat")
    return fake


@pytest.fixture
async def async_openai(client):
    async with openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="EMPTY", max_retries=0) as oa:
        yield oa


def attempts(samples: dict, outcome: str) -> float:
    return value(samples, "fastchat_api_guided_attempts_total", model=MODEL, kind="tools", outcome=outcome)


async def post(client, **fields):
    return await client.post("/v1/chat/completions", json=CHAT | {"messages": QUESTION} | fields)


def calls_of(body: dict) -> list[tuple[str, dict]]:
    calls = body["choices"][0]["message"]["tool_calls"]
    assert calls
    for call in calls:
        assert call["id"].startswith("call_") and len(call["id"]) > 10 and call["type"] == "function"
    return [(call["function"]["name"], json.loads(call["function"]["arguments"])) for call in calls]


async def test_a_call_with_text_before_it_is_answered_as_tool_calls(client, hermes):
    hermes.pieces = ["Let me check.", "\n", OSLO]
    resp = await post(client, tools=[WEATHER])
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    validate("CreateChatCompletionResponse", body)
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert calls_of(body) == [("get_weather", {"city": "Oslo"})]
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city":"Oslo"}'


async def test_a_call_alone_has_null_content(client, hermes):
    hermes.pieces = [OSLO]
    body = await (await post(client, tools=[WEATHER])).json()
    assert body["choices"][0]["message"]["content"] is None
    validate("CreateChatCompletionResponse", body)


async def test_text_without_a_call_is_plain_content_under_auto(client, hermes):
    hermes.pieces = ["It is ", "probably cold. <tool_call> {broken"]
    body = await (await post(client, tools=[WEATHER])).json()
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert choice["message"]["content"] == "It is probably cold. <tool_call> {broken"


async def test_a_call_of_an_unknown_function_is_content_under_auto(client, hermes):
    hermes.pieces = ['<tool_call>\n{"name": "rm_rf", "arguments": {}}\n</tool_call>']
    body = await (await post(client, tools=[WEATHER])).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["content"].startswith("<tool_call>")


async def test_parallel_calls_and_parallel_tool_calls_false(client, hermes):
    hermes.pieces = [OSLO, "\n", BERGEN]
    body = await (await post(client, tools=[WEATHER])).json()
    assert calls_of(body) == [("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Bergen"})]
    ids = [call["id"] for call in body["choices"][0]["message"]["tool_calls"]]
    assert len(set(ids)) == 2
    body = await (await post(client, tools=[WEATHER], parallel_tool_calls=False)).json()
    assert calls_of(body) == [("get_weather", {"city": "Oslo"})]


async def test_tool_choice_none_answers_text_even_if_it_looks_like_a_call(client, hermes):
    hermes.pieces = [OSLO]
    body = await (await post(client, tools=[WEATHER], tool_choice="none")).json()
    assert body["choices"][0]["message"]["content"] == OSLO
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_a_named_function_is_called_with_the_opening_prefilled(client, hermes):
    hermes.pieces = ['Oslo"}}', "\n</tool_call>"]
    choice = {"type": "function", "function": {"name": "get_weather"}}
    body = await (await post(client, tools=[WEATHER, TIME], tool_choice=choice)).json()
    validate("CreateChatCompletionResponse", body)
    assert calls_of(body) == [("get_weather", {"city": "Oslo"})]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


async def test_invalid_arguments_under_required_are_retried_then_answered(client, hermes):
    before = await scrape(client)
    hermes.queue = [['get_weather", "arguments": {"town": "Oslo"}}\n</tool_call>'],
                    ['get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>']]
    resp = await post(client, tools=[WEATHER, TIME], tool_choice="required")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert calls_of(body) == [("get_weather", {"city": "Oslo"})]
    assert body["usage"]["completion_tokens"] == 2  # both attempts (a piece is a token)
    after = await scrape(client)
    assert attempts(after, "retried") - attempts(before, "retried") == 1
    assert attempts(after, "valid") - attempts(before, "valid") == 1


async def test_never_a_usable_call_under_required_is_a_502(make_client, hermes):
    client = await make_client(tools={"max_attempts": 2})
    before = await scrape(client)
    hermes.pieces = ['get_weather", "arguments": {"town": "Oslo"}}\n</tool_call>']
    resp = await post(client, tools=[WEATHER, TIME], tool_choice="required")
    assert resp.status == 502 and resp.headers["x-should-retry"] == "false"
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_model_output"
    assert "in 2 attempts" in error["message"] and "'city' is a required property" in error["message"]
    assert len(hermes.sent("/worker_generate_stream")) == 2
    after = await scrape(client)
    assert attempts(after, "failed") - attempts(before, "failed") == 1


async def test_a_strict_function_called_badly_under_auto_is_retried(client, hermes):
    strict = {"type": "function", "function": WEATHER["function"] | {"strict": True}}
    hermes.queue = [['<tool_call>\n{"name": "get_weather", "arguments": {"city": 7}}\n</tool_call>'], [OSLO]]
    body = await (await post(client, tools=[strict])).json()
    assert calls_of(body) == [("get_weather", {"city": "Oslo"})]
    # Not strict: the call is answered as the model wrote it.
    hermes.queue = [['<tool_call>\n{"name": "get_weather", "arguments": {"city": 7}}\n</tool_call>']]
    body = await (await post(client, tools=[WEATHER])).json()
    assert calls_of(body) == [("get_weather", {"city": 7})]


async def test_each_choice_has_its_own_calls(client, hermes):
    hermes.queue = [[OSLO], ["No call needed."]]
    body = await (await post(client, tools=[WEATHER], n=2)).json()
    validate("CreateChatCompletionResponse", body)
    finishes = sorted(choice["finish_reason"] for choice in body["choices"])
    assert finishes == ["stop", "tool_calls"]


# -- streams ----------------------------------------------------------------------------------


async def test_a_stream_sends_content_then_the_call_deltas_then_tool_calls(client, hermes):
    hermes.pieces = ["Let me", " check.", "\n<tool", "_call>\n", '{"name": "get_weather", ',
                     '"arguments": {"city": "Oslo"}}\n</tool_call>']
    resp = await post(client, tools=[WEATHER], stream=True)
    assert resp.status == 200
    events = await read_events(resp)
    assert events
    for chunk in events:
        validate("CreateChatCompletionStreamResponse", chunk)
    assert streamed_text(events) == "Let me check."
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"][0]["delta"].get("tool_calls")]
    assert deltas == [
        {"tool_calls": [{"index": 0, "id": deltas[0]["tool_calls"][0]["id"], "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}]},
    ]
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_stream_without_a_call_releases_what_it_held(client, hermes):
    hermes.pieces = ["Use <", "tool_call", "> never"]
    events = await read_events(await post(client, tools=[WEATHER], stream=True))
    assert streamed_text(events) == "Use <tool_call> never"
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


async def test_the_official_clients_stream_helper_assembles_the_calls(async_openai, hermes):
    hermes.pieces = ["Checking.", "\n", OSLO, "\n", BERGEN]
    async with async_openai.chat.completions.stream(model=MODEL, messages=QUESTION, tools=[WEATHER]) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_completion()
    assert any(event.type == "tool_calls.function.arguments.done" for event in events)
    message = final.choices[0].message
    assert message.content == "Checking."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Bergen"})]
    assert final.choices[0].finish_reason == "tool_calls"


async def test_a_required_stream_is_retried_before_it_starts(client, hermes):
    hermes.queue = [["nonsense"], ['get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>']]
    resp = await post(client, tools=[WEATHER, TIME], tool_choice="required", stream=True,
                      stream_options={"include_usage": True})
    events = await read_events(resp)
    for chunk in events:
        validate("CreateChatCompletionStreamResponse", chunk)
    assert events[-1]["usage"]["completion_tokens"] == 2
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_required_stream_has_null_content_as_a_whole_answer_has(async_openai, hermes):
    hermes.pieces = ['Oslo"}}\n</tool_call>']
    async with async_openai.chat.completions.stream(model=MODEL, messages=QUESTION, tools=[WEATHER],
                                                    tool_choice="required") as stream:
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.content is None and message.tool_calls[0].function.arguments == '{"city":"Oslo"}'


async def test_a_required_stream_that_never_calls_is_a_502(client, hermes):
    hermes.pieces = ["nonsense"]
    resp = await post(client, tools=[WEATHER, TIME], tool_choice="required", stream=True)
    assert resp.status == 502


async def test_a_strict_call_gone_wrong_mid_stream_ends_with_an_error_event(client, hermes):
    strict = {"type": "function", "function": WEATHER["function"] | {"strict": True}}
    hermes.pieces = ["Sure.", '\n<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>']
    resp = await post(client, tools=[strict], stream=True)
    assert resp.status == 200
    events = await read_events(resp)
    assert streamed_text(events[:-1]) == "Sure."
    assert events[-1]["error"]["code"] == "invalid_model_output"


async def test_a_streamed_choice_each(client, hermes):
    hermes.queue = [[OSLO], ["No call."]]
    events = await read_events(await post(client, tools=[WEATHER], stream=True, n=2))
    finishes = sorted(c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"])
    assert finishes == ["stop", "tool_calls"]


# -- a round trip, LangChain, the legacy functions ------------------------------------------------


async def test_a_round_trip_call_result_answer(async_openai, hermes):
    hermes.pieces = [OSLO]
    first = await async_openai.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    hermes.pieces = ["It is 12 C in Oslo."]
    messages = [*QUESTION, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "12 C"}]
    second = await async_openai.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "It is 12 C in Oslo."
    prompt = hermes.sent("/worker_generate")[-1]["prompt"]
    assert prompt.endswith(f"<|im_start|>assistant\n{OSLO}<|im_end|>\n<|im_start|>user\n"
                           "<tool_response>\n12 C\n</tool_response><|im_end|>\n<|im_start|>assistant\n")


async def test_a_round_trip_with_the_message_as_model_dump_gives_it_back(async_openai, hermes):
    hermes.pieces = [OSLO]
    first = await async_openai.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER])
    message = first.choices[0].message.model_dump()  # "function_call": None beside "tool_calls"
    assert message["function_call"] is None and message["tool_calls"]
    hermes.pieces = ["It is 12 C in Oslo."]
    result = {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "12 C"}
    second = await async_openai.chat.completions.create(model=MODEL, messages=[*QUESTION, message, result],
                                                        tools=[WEATHER])
    assert second.choices[0].message.content == "It is 12 C in Oslo."
    assert f"{OSLO}<|im_end|>" in hermes.sent("/worker_generate")[-1]["prompt"]


async def test_langchains_bind_tools_round_trip(client, hermes):
    langchain_openai = pytest.importorskip("langchain_openai")
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "12 C"

    llm = langchain_openai.ChatOpenAI(model=MODEL, base_url=str(client.make_url("/v1")), api_key="EMPTY",
                                      max_retries=0).bind_tools([get_weather])
    hermes.pieces = [OSLO]
    question = HumanMessage("Weather in Oslo?")
    reply = await llm.ainvoke([question])
    assert reply.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo"}, "id": reply.tool_calls[0]["id"],
                                 "type": "tool_call"}]
    hermes.pieces = ["12 C in Oslo."]
    result = ToolMessage(get_weather.invoke(reply.tool_calls[0]["args"]), tool_call_id=reply.tool_calls[0]["id"])
    final = await llm.ainvoke([question, reply, result])
    assert final.content == "12 C in Oslo."
    assert "<tool_response>\n12 C\n</tool_response>" in hermes.sent("/worker_generate")[-1]["prompt"]


async def test_the_legacy_functions_answer_with_function_call(client, hermes):
    hermes.pieces = [OSLO]
    resp = await post(client, functions=[WEATHER["function"]])
    body = await resp.json()
    validate("CreateChatCompletionResponse", body)
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "function_call" and "tool_calls" not in choice["message"]
    assert choice["message"]["function_call"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    events = await read_events(await post(client, functions=[WEATHER["function"]], stream=True))
    for chunk in events:
        validate("CreateChatCompletionStreamResponse", chunk)
    deltas = [e["choices"][0]["delta"]["function_call"] for e in events if "function_call" in e["choices"][0]["delta"]]
    assert deltas == [{"name": "get_weather", "arguments": ""}, {"arguments": '{"city":"Oslo"}'}]
    assert events[-1]["choices"][0]["finish_reason"] == "function_call"
    # The result of a legacy call goes back as a function message.
    messages = [*QUESTION, {"role": "assistant", "content": None, "function_call": {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}}, {"role": "function", "name": "get_weather",
                                                                   "content": "12 C"}]
    hermes.pieces = ["12 C."]
    resp = await post(client, functions=[WEATHER["function"]], function_call={"name": "get_weather"},
                      messages=messages)
    assert resp.status in (200, 502)
    assert "<tool_response>\n12 C\n</tool_response>" in hermes.sent("/worker_generate_stream")[-1]["prompt"]


# -- the other formats' answers ------------------------------------------------------------------


@pytest.mark.parametrize(("conv", "pieces"), [
    (None, ['{"name": "get_weather", "arguments": {"city": "Oslo"}}']),
    (None, ['Sure!\n```json\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}\n```']),
    (None, ['{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}']),
    ("llama-3", ['{"name": "get_weather", "parameters": {"city": "Oslo"}}']),
    ("mistral", ['[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo"}}]']),
])
async def test_each_formats_calls_are_read(client, fake, conv, pieces):
    fake.conv = LLAMA3_CONV if conv == "llama-3" else fastchat_conv(conv) if conv else fake.conv
    fake.pieces = pieces
    body = await (await post(client, tools=[WEATHER])).json()
    validate("CreateChatCompletionResponse", body)
    assert calls_of(body) == [("get_weather", {"city": "Oslo"})]
    events = await read_events(await post(client, tools=[WEATHER], stream=True))
    assert not streamed_text(events).strip("Sure!")
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_json_answer_that_is_not_a_call_is_content(client, fake):
    fake.pieces = ['The set is {1, 2}.']
    body = await (await post(client, tools=[WEATHER])).json()
    assert body["choices"][0]["message"]["content"] == "The set is {1, 2}."
    events = await read_events(await post(client, tools=[WEATHER], stream=True))
    assert streamed_text(events) == "The set is {1, 2}."


async def test_braces_brackets_and_inline_code_in_prose_stream_as_they_come_in_the_json_format(client, fake):
    fake.pieces = ["Use `ls` now", " or {x} [1].", " Then stop."]
    events = await read_events(await post(client, tools=[WEATHER], stream=True))
    assert [text_of(chunk) for chunk in with_text(events)] == fake.pieces


async def test_a_call_nested_too_deeply_to_read_is_content_whole_and_streamed(client, hermes):
    deep = '<tool_call>\n{"name": "get_weather", "arguments": {"city": ' + "[" * 5000 + "]" * 5000 + "}}\n</tool_call>"
    hermes.pieces = [deep]
    resp = await post(client, tools=[WEATHER])
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == deep
    events = await read_events(await post(client, tools=[WEATHER], stream=True))
    assert streamed_text(events) == deep and events[-1]["choices"][0]["finish_reason"] == "stop"


async def test_a_model_whose_format_is_none_keeps_refusing_tools(make_client, fake):
    client = await make_client(models={MODEL: {"tool_format": "none"}})
    resp = await post(client, tools=[WEATHER])
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == "tools" and error["message"] == (
        "'tools' is not supported: FastChat workers have no tool or function calling, so the model "
        "cannot honour it. Remove it, or describe the tools in the messages.")


async def test_a_chat_without_tools_costs_nothing_more(client, fake):
    for fields in ({}, {"tools": []}, {"tool_choice": "auto"}, {"tools": [WEATHER], "tool_choice": "none"}):
        resp = await post(client, **fields)
        assert resp.status == 200
    sent = fake.sent("/worker_generate")
    assert len(sent) == 4 and not fake.sent("/worker_generate_stream")
    assert len({params["prompt"] for params in sent}) == 1


async def test_the_worker_is_hung_up_on_once_a_single_call_is_complete(client, hermes):
    from devstack.standin import Answer

    from ..support import until

    hermes.answers = {MODEL: Answer(['Oslo"}}', "\n</tool_call>", " and"] + [" more"] * 40, delay=0.02)}
    choice = {"type": "function", "function": {"name": "get_weather"}}
    body = await (await post(client, tools=[WEATHER], tool_choice=choice)).json()
    assert calls_of(body) == [("get_weather", {"city": "Oslo"})]
    (generation,) = [entry for entry in hermes.requests if entry["path"] == "/worker_generate_stream"]
    await until(lambda: generation["ended"] is not None)
    assert generation["outcome"] == "closed"


async def test_history_without_tools_offered_is_answered_as_any_chat_logprobs_included(client, hermes):
    messages = [*QUESTION, {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12 C"}]
    resp = await post(client, messages=messages, logprobs=True)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["choices"][0]["logprobs"] is not None
    assert "<tool_response>\n12 C\n</tool_response>" in hermes.sent("/worker_generate")[-1]["prompt"]


async def test_history_without_tools_offered_takes_a_json_response_format(client, hermes):
    messages = [*QUESTION, {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12 C"}]
    hermes.pieces = ['"celsius": 12}']
    resp = await post(client, messages=messages, response_format={"type": "json_object"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == '{"celsius": 12}'
    prompt = hermes.sent("/worker_generate_stream")[-1]["prompt"]
    assert "<tool_response>\n12 C\n</tool_response>" in prompt and prompt.endswith("<|im_start|>assistant\n{")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/v1/chat/completions"])
async def test_both_chat_routes_in_both_modes_answer_calls(make_client, hermes, path):
    for strict in (False, True):
        client = await make_client(compat={"strict": strict})
        hermes.pieces = [OSLO]
        resp = await client.post(path, json=CHAT | {"messages": QUESTION, "tools": [WEATHER],
                                                    "tool_choice": "auto", "parallel_tool_calls": True})
        assert resp.status == 200, await resp.text()
        assert "X-Ignored-Params" not in resp.headers
        assert calls_of(await resp.json()) == [("get_weather", {"city": "Oslo"})]


async def test_the_official_clients_parse_reads_a_pydantic_tools_arguments(async_openai, hermes):
    """``.parse()`` with ``openai.pydantic_function_tool`` (strict, as the client requires)
    gives the arguments back as the model's instance."""

    class GetWeather(BaseModel):
        city: str

    hermes.pieces = ['<tool_call>\n{"name": "GetWeather", "arguments": {"city": "Oslo"}}\n</tool_call>']
    parsed = await async_openai.chat.completions.parse(
        model=MODEL, messages=QUESTION, tools=[openai.pydantic_function_tool(GetWeather)])
    calls = parsed.choices[0].message.tool_calls
    assert calls and len(calls) == 1
    assert calls[0].function.parsed_arguments == GetWeather(city="Oslo")
    assert parsed.choices[0].finish_reason == "tool_calls"
