"""The prompt the worker receives when tools are in play, per format: the definitions, past
calls and results in the documented shape (literal prompts), and the opening of a required or
named call."""

from __future__ import annotations

import json

import pytest

from ..support import CHAT, LLAMA3_CONV, MODEL, fastchat_conv

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HISTORY = [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "12 C"},
]
SIGNATURE = json.dumps(WEATHER)
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


async def prompt_of(client, fake, **fields) -> str:
    fake.requests.clear()
    resp = await client.post("/v1/chat/completions", json=CHAT | fields)
    assert resp.status == 200, await resp.text()
    sent = fake.sent("/worker_generate_stream") or fake.sent("/worker_generate")
    assert len(sent) == 1
    return sent[0]["prompt"]


async def test_hermes_on_a_chatml_template(client, fake):
    fake.conv = fastchat_conv("qwen-7b-chat")
    prompt = await prompt_of(client, fake, tools=[WEATHER], messages=HISTORY)
    assert prompt == (
        "<|im_start|>system\nYou are a helpful assistant.\n\nYou can call functions. Their signatures, "
        "one JSON object per line, are inside <tools></tools>:\n<tools>\n" + SIGNATURE + "\n</tools>\n"
        "To call a function, write <tool_call>, then on the next line {\"name\": <function name>, "
        "\"arguments\": <the arguments as a JSON object>}, then </tool_call> on a line of its own; "
        "write one such block per call. Otherwise, answer in plain text.<|im_end|>\n"
        "<|im_start|>user\nWeather in Oslo?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n12 C\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n")


async def test_llama3_json_on_a_llama3_template(client, fake):
    fake.conv = dict(LLAMA3_CONV)
    prompt = await prompt_of(client, fake, tools=[WEATHER], messages=HISTORY)
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou can call functions, "
        "described by these JSON objects (one per line):\n" + SIGNATURE + "\nTo call a function, answer "
        "with nothing but a JSON object {\"name\": <function name>, \"parameters\": <the arguments as a "
        "JSON object>}. Otherwise, answer in plain text.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWeather in Oslo?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": "
        "{\"city\": \"Oslo\"}}<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n12 C<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")


async def test_mistral_on_a_mistral_template(client, fake):
    from fastchat_api.tools.mistral import short_id

    fake.conv = fastchat_conv("mistral")
    messages = [*HISTORY, {"role": "assistant", "content": "It is 12 C."}, {"role": "user", "content": "And Bergen?"}]
    prompt = await prompt_of(client, fake, tools=[WEATHER], messages=messages)
    id_ = short_id("call_1")
    assert len(id_) == 9 and id_.isalnum()
    assert prompt == (
        "[INST] Weather in Oslo? [/INST] [TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": "
        "{\"city\": \"Oslo\"}, \"id\": \"" + id_ + "\"}]</s>"
        "[INST] [TOOL_RESULTS] {\"content\": \"12 C\", \"call_id\": \"" + id_ + "\"} [/TOOL_RESULTS] "
        "[/INST] It is 12 C.</s>[AVAILABLE_TOOLS] [" + SIGNATURE + "][/AVAILABLE_TOOLS][INST] And Bergen? [/INST]")


async def test_mistral_puts_the_tools_before_the_users_last_message_not_before_results(client, fake):
    fake.conv = fastchat_conv("mistral")
    prompt = await prompt_of(client, fake, tools=[WEATHER], messages=HISTORY)
    assert prompt.startswith(f"[AVAILABLE_TOOLS] [{SIGNATURE}][/AVAILABLE_TOOLS][INST] Weather in Oslo? [/INST]")
    assert prompt.count("[AVAILABLE_TOOLS]") == 1 and prompt.endswith("[/TOOL_RESULTS] [/INST]")


async def test_json_on_any_other_template(client, fake):
    prompt = await prompt_of(client, fake, tools=[WEATHER], messages=HISTORY)
    assert prompt == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
        "helpful, detailed, and polite answers to the user's questions.\n\nYou can call functions, "
        "described by these JSON objects (one per line):\n" + SIGNATURE + "\nTo call a function, answer "
        "with nothing but a JSON object {\"name\": <function name>, \"arguments\": <the arguments as a "
        "JSON object>}, or a JSON array of such objects to call several. Otherwise, answer in plain "
        "text without JSON. USER: Weather in Oslo? ASSISTANT: {\"name\": \"get_weather\", \"arguments\": "
        "{\"city\": \"Oslo\"}}</s>USER: {\"tool_call_id\": \"call_1\", \"name\": \"get_weather\", "
        "\"content\": \"12 C\"} ASSISTANT:")


NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(("conv", "choice", "ending"), [
    (None, "required", 'ASSISTANT: {"name": "'),
    (None, NAMED, 'ASSISTANT: {"name": "get_weather", "arguments": {"city": "'),
    ("qwen-7b-chat", "required", '<|im_start|>assistant\n<tool_call>\n{"name": "'),
    ("qwen-7b-chat", NAMED, '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "'),
    ("mistral", "required", '[/INST] [TOOL_CALLS] [{"name": "'),
])
async def test_a_required_or_named_call_is_opened_in_the_prompt(client, fake, conv, choice, ending):
    if conv:
        fake.conv = fastchat_conv(conv)
    fake.pieces = ['get_weather", "arguments": {"city": "Oslo"}}'] if choice == "required" else ['Oslo"}}']
    if conv == "qwen-7b-chat":
        fake.pieces = [fake.pieces[0] + "\n</tool_call>"]
    if conv == "mistral":
        fake.pieces = [fake.pieces[0] + "]"]
    prompt = await prompt_of(client, fake, tools=[WEATHER, CLOCK], tool_choice=choice)
    assert prompt.endswith(ending)


async def test_required_with_one_function_opens_a_call_of_it_and_its_arguments(client, fake):
    fake.pieces = ['Oslo"}}']
    prompt = await prompt_of(client, fake, tools=[WEATHER], tool_choice="required")
    assert prompt.endswith('ASSISTANT: {"name": "get_weather", "arguments": {"city": "')


async def test_tool_choice_none_writes_no_definitions(client, fake):
    prompt = await prompt_of(client, fake, tools=[WEATHER], tool_choice="none")
    assert "get_weather" not in prompt and prompt.endswith("USER: Hi ASSISTANT:")


async def test_a_models_format_and_instruction_come_from_the_config(make_client, fake):
    client = await make_client(models={MODEL: {"tool_format": "hermes", "tool_instruction": "TOOLS: {tools}"}})
    prompt = await prompt_of(client, fake, tools=[WEATHER])
    assert f"questions.\n\nTOOLS: {SIGNATURE} USER: Hi ASSISTANT:" in prompt
    client = await make_client(tools={"instructions": {"json": "Functions: {tools}"}})
    assert f"\n\nFunctions: {SIGNATURE} USER: Hi" in await prompt_of(client, fake, tools=[WEATHER])


async def test_a_past_call_whose_arguments_nest_too_deeply_to_read_is_written_as_sent(client, fake):
    fake.conv = fastchat_conv("qwen-7b-chat")
    arguments = "[" * 5000 + "]" * 5000  # a client's string: json.loads raises RecursionError on it
    history = [HISTORY[0], {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]}]
    prompt = await prompt_of(client, fake, messages=history, tools=[WEATHER])
    assert json.dumps({"name": "get_weather", "arguments": arguments}) in prompt
