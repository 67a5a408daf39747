"""Which format a worker's template implies, the formats' readers on their own (what a model
may write), and the ``tools`` config section."""

from __future__ import annotations

import pytest

from fastchat_api.config import ConfigError, build_config
from fastchat_api.conversation import Template
from fastchat_api.tools import FORMATS, format_of
from fastchat_api.tools.calls import Call

from ..support import LLAMA3_CONV, fastchat_conv


@pytest.mark.parametrize(("conv", "expected"), [
    (fastchat_conv("qwen-7b-chat"), "hermes"),
    (fastchat_conv("OpenHermes-2.5-Mistral-7B"), "hermes"),
    (fastchat_conv("mistral-7b-openorca"), "hermes"),  # chatml, whatever the name says
    (fastchat_conv("qwen-7b-chat", name="smollm2"), "hermes"),  # a chatml-style template of its own
    (LLAMA3_CONV, "llama3_json"),
    (fastchat_conv("mistral"), "mistral"),
    (fastchat_conv("llama-2"), "json"),
    (fastchat_conv("vicuna_v1.1"), "json"),
    (fastchat_conv("chatglm3"), "json"),
])
def test_the_template_decides_the_format(conv, expected):
    assert format_of(Template.from_worker(conv)) == expected


OSLO = Call("get_weather", {"city": "Oslo"})
BERGEN = Call("get_weather", {"city": "Bergen"})


@pytest.mark.parametrize(("name", "text", "content", "calls"), [
    ("hermes", 'Hi\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', "Hi", [OSLO]),
    ("hermes", '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n<tool_call>\n'
               '{"name": "get_weather", "arguments": {"city": "Bergen"}}', "", [OSLO, BERGEN]),
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Os', None, []),
    ("hermes", "No call here.", None, []),
    ("hermes", 'On it.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\nAnd '
               'Bergen:\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Bergen"}}\n</tool_call>', "On it.",
     [OSLO, BERGEN]),
    ("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"na',
     None, []),
    ("hermes", '<tool_call>\n{"arguments": {}}\n</tool_call>', None, []),
    ("hermes", '<tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>', None, []),
    ("json", '[{"name": "get_weather", "arguments": {"city": "Oslo"}}, '
             '{"name": "get_weather", "arguments": {"city": "Bergen"}}]', "", [OSLO, BERGEN]),
    ("json", 'Here:\n```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```', "Here:", [OSLO]),
    ("json", '{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}', "",
     [OSLO]),
    ("json", "No JSON [at all].", None, []),
    ("json", 'See [1] and {this}: {"name": "get_weather", "arguments": {"city": "Oslo"}}', "See [1] and {this}:",
     [OSLO]),
    ("json", 'Run ```ls``` then {"name": "get_weather", "arguments": {"city": "Oslo"}}', "Run ```ls``` then", [OSLO]),
    ("json", '{"answer": {"name": "get_weather", "arguments": {"city": "Oslo"}}}', None, []),
    ("json", '{"x": 1,} ' * 8 + '{"name": "get_weather", "arguments": {"city": "Oslo"}}', None, []),
    ("llama3_json", '{"name": "get_weather", "parameters": {"city": "Oslo"}}; '
                    '{"name": "get_weather", "parameters": {"city": "Bergen"}}', "", [OSLO, BERGEN]),
    ("mistral", '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo"}}, '
                '{"name": "get_weather", "arguments": {"city": "Bergen"}}]', "", [OSLO, BERGEN]),
    ("mistral", '[TOOL_CALLS] {"name": "get_weather", "arguments": {"city": "Oslo"}}', "", [OSLO]),
    ("mistral", "[TOOL_CALLS] nonsense", None, []),
])
def test_what_a_model_may_write_is_split_into_content_and_calls(name, text, content, calls):
    split = FORMATS[name].split(text)
    assert split.calls == calls
    assert split.content == (text if content is None else content)


@pytest.mark.parametrize(("name", "text", "held"), [
    ("hermes", "Let me check. <tool", "Let me check."),
    ("hermes", "Let me check. <tx", "Let me check. <tx"),
    ("hermes", "a <tool_call>\n{", "a"),
    ("mistral", "ok [TOOL_", "ok"),
    ("json", "The answer: {", "The answer:"),
    ("json", "Plain text", "Plain text"),
    ("json", "A {set}, a [1], `ls` and [text](url) ok", "A {set}, a [1], `ls` and [text](url) ok"),
    ("json", 'Sure: [ {"na', "Sure:"),
    ("json", "Run:\n``", "Run:"),
    ("json", "Run:\n```json\n", "Run:"),
    ("json", "a [", "a"),
])
def test_a_possible_start_of_a_call_is_held_back(name, text, held):
    assert text[: FORMATS[name].hold(text)] == held


@pytest.mark.parametrize(("data", "message"), [
    ({"models": {"m": {"tool_format": "xml"}}}, "models.m.value.tool_format: Must be one of"),
    ({"models": {"m": {"tool_fromat": "json"}}}, "models.m.value.tool_fromat: Unknown field"),
    ({"models": {"m": "hermes"}}, "models.m.value: Invalid input type"),
    ({"tools": {"instructions": {"none": "x"}}}, "tools.instructions.none.key: Must be one of"),
    ({"tools": {"max_attempts": 0}}, "tools.max_attempts: Must be greater than or equal to 1"),
])
def test_a_bad_tools_setting_stops_the_start(data, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        build_config(data)


def test_a_models_settings_load_frozen():
    config = build_config({"models": {"m": {"tool_format": "mistral"}}})
    assert config.models["m"].tool_format == "mistral" and config.models["m"].tool_instruction is None
    with pytest.raises(TypeError):
        config.models["n"] = config.models["m"]  # type: ignore[index]


CALL = '<tool_call>\n{"name": "f", "arguments": {}}'


@pytest.mark.parametrize(("choice", "parallel", "text", "cut"), [
    ("named", True, CALL + "\n<tool_call>", CALL),
    ("required", False, CALL + "\n</tool_call>", CALL),
    ("required", True, CALL + "\n</tool_call>\n<tool", None),
    ("required", True, CALL + "\n</tool", None),
    ("required", True, CALL + "\n</tool_call>\nThe end", CALL + "\n</tool_call>\n"),
    ("required", True, CALL + "\n</tool_call>\n" + CALL + "</tool_call> bye", CALL + "\n</tool_call>\n" + CALL + "</tool_call> "),
])
def test_a_forced_answer_ends_after_its_calls(choice, parallel, text, cut):
    from fastchat_api.protocol import Function, Tools
    from fastchat_api.tools.guide import ToolGuide

    tools = Tools((Function("f"), Function("g")), choice, "f" if choice == "named" else None, parallel)
    finder = ToolGuide(FORMATS["hermes"], tools, "{tools}").end()
    ends = [finder.feed(text[:size]) for size in range(1, len(text) + 1)]
    found = next((end for end in ends if end is not None), None)
    assert (None if found is None else text[:found]) == cut
    assert not finder.done
