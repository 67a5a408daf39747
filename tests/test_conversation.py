"""Conversation templates: our renderer against FastChat's own ``get_prompt()``.

The differential tests build the ``conv`` dict a worker sends for every template fschat registers,
in both integer numberings, and require byte-identical prompts and images. Templates only FastChat
HEAD has are checked against the hand-derived vectors of the protocol notes (§4.6).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from fastchat_api.conversation import NUMBERING_0236, NUMBERING_HEAD, Prompt, Template
from fastchat_api.errors import APIError

# SeparatorStyle names in integer order at FastChat HEAD (value = index + 1), from §4.2.
HEAD_STYLES = [
    "ADD_COLON_SINGLE", "ADD_COLON_TWO", "ADD_COLON_SPACE_SINGLE", "NO_COLON_SINGLE",
    "NO_COLON_TWO", "ADD_NEW_LINE_SINGLE", "LLAMA2", "LLAMA3", "CHATGLM", "CHATML", "CHATINTERN",
    "DOLLY", "RWKV", "PHOENIX", "ROBIN", "FALCON_CHAT", "CHATGLM3", "DEEPSEEK_CHAT", "METAMATH",
    "YUAN2", "GEMMA", "CLLM", "DEFAULT",
]


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


def system(content):
    return {"role": "system", "content": content}


def text(value):
    return {"type": "text", "text": value}


def image(url):
    return {"type": "image_url", "image_url": {"url": url}}


CONVERSATIONS = {
    "one turn": [user("Hello!")],
    "several turns": [user("Hello!"), assistant("Hi!"), user("How are you?"), assistant("Fine."),
                      user("Good.")],
    "system message": [system("SYS"), user("Hello!"), assistant("Hi!"), user("How are you?")],
    "empty system message": [system(""), user("Hello!")],
    "systems anywhere, last wins": [user("a"), system("first"), assistant("b"),
                                    system("{x} {system_message} stay literal"), user("c")],
    "developer is system": [{"role": "developer", "content": "DEV"}, user("Hello!")],
    "assistant last": [user("Hello!"), assistant("Hi!")],
    "starts with assistant": [assistant("Hi!"), user("Hello")],
    "unicode": [user("Grüße 👋 你好"), assistant("¡Hola! ✓"), user("ありがとう")],
    "multi-line": [user("line1\nline2\n\nline3\r\n\r\nend"), assistant("  padded  \n"),
                   user("I am Jon")],
    "consecutive user turns": [user("first"), user("second"), assistant("reply"), user("third")],
    "empty user message": [user("")],
    "null assistant content": [user("a"), assistant(None), user("b")],
    "text-only content list, joined": [system([text("S1"), text("S2")]), user("q"),
                                       assistant([text("A1"), text("A2")]), user("r")],
}
IMAGE_CONVERSATIONS = {
    "one image": [user([text("Describe."), image("http://x/1.png")])],
    "images, turns, consecutive users": [
        user([image("u1"), image("u2"), text("a"), text("b")]), assistant("ok"),
        user([image("u3")]), user([image("u4"), text("z")]),
    ],
    "empty text-only list": [user([text("")])],
    "text-only list": [user([text("only"), text("text")]), assistant("r"), user("s")],
}
STRING_PROMPT = "A raw prompt\nwith no template."


def worker_dict(conv, numbering=NUMBERING_0236):
    """The ``conv`` dict as a worker serves it: dataclass fields, sep_style as an int, JSON."""
    fields = dataclasses.asdict(conv)
    fields["sep_style"] = int(conv.sep_style)
    fields = json.loads(json.dumps(fields))
    if numbering == NUMBERING_HEAD:
        head = {}
        for key, value in fields.items():
            head[key] = value
            if key == "system_message":
                head["system_message_vision"] = ""
        head["sep_style"] = HEAD_STYLES.index(conv.sep_style.name) + 1
        head["max_image_size_mb"] = None
        fields = head
    return fields


def fastchat_render(fc, conv_dict, messages):
    """What fschat 0.2.36's API server sends for these messages (its get_gen_params, restated)."""
    if isinstance(messages, str):
        return Prompt(messages, [])
    conv = fc.Conversation(
        name=conv_dict["name"],
        system_template=conv_dict["system_template"],
        system_message=conv_dict["system_message"],
        roles=conv_dict["roles"],
        messages=list(conv_dict["messages"]),
        offset=conv_dict["offset"],
        sep_style=fc.SeparatorStyle(conv_dict["sep_style"]),
        sep=conv_dict["sep"],
        sep2=conv_dict["sep2"],
        stop_str=conv_dict["stop_str"],
        stop_token_ids=conv_dict["stop_token_ids"],
    )
    for message in messages:
        role, content = message["role"], message["content"]
        if role in ("system", "developer"):  # FastChat has no developer role: ours is system
            conv.set_system_message(_joined(content))
        elif role == "user" and type(content) is list:
            urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
            conv.append_message(conv.roles[0], (_joined(content), urls))
        elif role == "user":
            conv.append_message(conv.roles[0], content)
        else:
            conv.append_message(conv.roles[1], _joined(content))
    conv.append_message(conv.roles[1], None)
    return Prompt(conv.get_prompt(), conv.get_images())


def _joined(content):
    """Text parts joined; FastChat would pass a system/assistant list as-is (a repr or a crash)."""
    if type(content) is list:
        return "\n".join(p["text"] for p in content if p["type"] == "text")
    return content


def renderable(fc):
    """fschat's templates a worker can serve: five have sep_style None and crash a worker."""
    usable = {name: conv for name, conv in fc.conv_templates.items() if conv.sep_style is not None}
    skipped = sorted(set(fc.conv_templates) - set(usable))
    return usable, skipped


@pytest.fixture(scope="module")
def fc():
    return pytest.importorskip("fastchat.conversation")


@pytest.mark.parametrize("numbering", [NUMBERING_0236, NUMBERING_HEAD])
def test_every_template_matches_fastchat(fc, numbering):
    usable, skipped = renderable(fc)
    assert len(fc.conv_templates) == 83
    assert skipped == ["bard", "chatgpt", "gemini", "pplxai", "steerlm"]
    cases = list(CONVERSATIONS.values()) + [STRING_PROMPT]
    compared, mismatches = 0, []
    for name, conv in usable.items():
        conv_dict = worker_dict(conv, numbering)
        template = Template.from_worker(conv_dict, "http://worker:21002")
        assert (template.name, template.numbering) == (name, numbering)
        assert template.stop_str == conv_dict["stop_str"]
        assert template.stop_token_ids == conv_dict["stop_token_ids"]
        assert list(template.roles) == conv_dict["roles"]
        reference = worker_dict(conv)  # FastChat 0.2.36 only reads its own numbering
        for messages in cases:
            compared += 1
            expected = fastchat_render(fc, reference, messages)
            got = template.render(messages)
            if got != expected:
                mismatches.append((name, messages, expected, got))
    print(
        f"\n[{numbering}] templates={len(usable)} (skipped {len(skipped)}: {', '.join(skipped)}) "
        f"cases={len(cases)} comparisons={compared} mismatches={len(mismatches)}"
    )
    assert compared == 78 * len(cases)
    assert mismatches == []


def test_images_match_fastchat_0236(fc):
    """0.2.36 workers: only ADD_COLON_TWO takes images; elsewhere FastChat's 500 becomes our 400.

    Deliberate differences, asserted here: a text-only content list renders as its text where
    FastChat would crash (or, in CHATGLM, write the tuple's repr), and CHATGLM refuses images.
    """
    usable, _ = renderable(fc)
    # An offset with preset turns decides which user turns' images get_images() reports.
    usable["vicuna, odd offset"] = dataclasses.replace(
        fc.conv_templates["vicuna_v1.1"], name="vicuna-offset", offset=1,
        messages=[["USER", "preset question"], ["ASSISTANT", "preset answer"]],
    )
    compared = refused = rendered_as_text = 0
    for name, conv in usable.items():
        conv_dict = worker_dict(conv)
        template = Template.from_worker(conv_dict, "http://worker:21002")
        for messages in IMAGE_CONVERSATIONS.values():
            has_images = any(
                p["type"] == "image_url" for m in messages if type(m["content"]) is list
                for p in m["content"]
            )
            try:
                expected = fastchat_render(fc, conv_dict, messages)
            except (TypeError, AttributeError):
                expected = None
            if template.style == "ADD_COLON_TWO":
                assert template.render(messages) == expected, name
                compared += 1
            elif has_images:
                with pytest.raises(APIError) as info:
                    template.render(messages)
                assert (info.value.status, info.value.code) == (400, "unsupported_value")
                assert info.value.message == (
                    f"The model's conversation template '{conv.name}' does not accept images"
                )
                assert expected is None or template.style == "CHATGLM", name
                refused += 1
            else:
                prompt = template.render(messages)
                assert prompt == fastchat_render(fc, conv_dict, _as_strings(messages))
                rendered_as_text += 1
    print(f"\n[0.2.36 images] compared={compared} refused={refused} as-text={rendered_as_text}")
    assert compared == 11 * len(IMAGE_CONVERSATIONS)


def _as_strings(messages):
    return [m | {"content": _joined(m["content"])} for m in messages]


def head_conv(name, style, system_template="{system_message}", system_message="",
              roles=("user", "assistant"), sep="\n", sep2=None, stop_str=None,
              stop_token_ids=None):
    """A HEAD worker's dict for a template fschat 0.2.36 lacks, from the §4.4/§4.7 values."""
    return {
        "name": name, "system_template": system_template, "system_message": system_message,
        "system_message_vision": "", "roles": list(roles), "messages": [], "offset": 0,
        "sep_style": HEAD_STYLES.index(style) + 1, "sep": sep, "sep2": sep2,
        "stop_str": stop_str, "stop_token_ids": stop_token_ids, "max_image_size_mb": None,
    }


VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
HEAD_ONLY = {
    "llama-3": head_conv(
        "llama-3", "LLAMA3",
        system_template="<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>",
        sep="", stop_str="<|eot_id|>", stop_token_ids=[128001, 128009],
    ),
    "gemma": head_conv("gemma", "GEMMA", roles=("user", "model"), sep="<end_of_turn>\n",
                       stop_str="<end_of_turn>"),
    "cllm": head_conv("cllm", "CLLM", system_message=VICUNA_SYSTEM, roles=("USER", "ASSISTANT"),
                      sep=" ", sep2="</s>"),
    "api_based_default": head_conv("api_based_default", "DEFAULT", sep=None),
}
T0 = [user("Hello!")]
T1 = [user("Hello!"), assistant("Hi!"), user("How are you?")]
T1S = [system("SYS")] + T1
HEAD_VECTORS = {  # §4.6: template -> (T0, T1, T1s)
    "llama-3": (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    "gemma": (
        "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
        "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi!<end_of_turn>\n"
        "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n",
        "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi!<end_of_turn>\n"
        "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n",
    ),
    "cllm": (
        VICUNA_SYSTEM + " USER: Hello! ASSISTANT:",
        VICUNA_SYSTEM + " USER: How are you? ASSISTANT:",
        "SYS USER: How are you? ASSISTANT:",
    ),
    "api_based_default": (
        "\nuser: Hello!\nassistant:",
        "\nuser: Hello!\nassistant: Hi!\nuser: How are you?\nassistant:",
        "SYS\nuser: Hello!\nassistant: Hi!\nuser: How are you?\nassistant:",
    ),
}


@pytest.mark.parametrize("name", sorted(HEAD_VECTORS))
def test_head_only_templates(name):
    template = Template.from_worker(HEAD_ONLY[name], "http://worker:21002")
    assert template.numbering == NUMBERING_HEAD
    assert template.stop_str == HEAD_ONLY[name]["stop_str"]
    assert template.stop_token_ids == HEAD_ONLY[name]["stop_token_ids"]
    rendered = tuple(template.render(messages).text for messages in (T0, T1, T1S))
    assert rendered == HEAD_VECTORS[name]


def test_head_edge_vectors(fc):
    """§4.6 edge cases, plus what the HEAD API server does to a content list with images."""
    llama3 = Template.from_worker(HEAD_ONLY["llama-3"])
    assert llama3.render([user("  padded \n")]).text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\npadded<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    yuan2 = Template.from_worker(worker_dict(fc.conv_templates["yuan2"], NUMBERING_HEAD))
    assert yuan2.render([user("I am Jon")]).text == "I am Jo<sep>"
    llama2 = Template.from_worker(worker_dict(fc.conv_templates["llama-2"], NUMBERING_HEAD))
    assert llama2.render([assistant("Hi!"), user("Hello")]).text == (
        "[INST] Hi! [/INST] Hello </s><s>[INST]"
    )
    vicuna = Template.from_worker(worker_dict(fc.conv_templates["vicuna_v1.1"], NUMBERING_HEAD))
    assert vicuna.render([user("")]).text == VICUNA_SYSTEM + " USER:ASSISTANT:"
    assert vicuna.render([user([text("Describe."), image("data:image/png;base64,AAAA")])]) == (
        VICUNA_SYSTEM + " USER: $$<image>$$<image>\nDescribe. ASSISTANT:",
        ["data:image/png;base64,AAAA"],
    )
    qwen = Template.from_worker(worker_dict(fc.conv_templates["qwen-7b-chat"], NUMBERING_HEAD))
    assert qwen.render([user([image("u1"), image("u2"), text("Compare.")])]) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "$$<image>$$$$<image>$$<image>\n<image>\nCompare.<|im_end|>\n<|im_start|>assistant\n",
        ["u1", "u2"],
    )
    default = Template.from_worker(HEAD_ONLY["api_based_default"])
    assert default.render([user([image("u1"), text("What?")])]) == (
        "\nuser: <image>\nWhat?\nassistant:", ["u1"],
    )
    one_shot = Template.from_worker(worker_dict(fc.conv_templates["one_shot"], NUMBERING_HEAD))
    prompt = one_shot.render(T0).text
    assert len(prompt) == 2266 and prompt.endswith(
        ". Have a great celebration!\n### Human: Hello!\n### Assistant:"
    )


def test_numbering_is_decoded_by_name_then_keys(fc):
    qwen = worker_dict(fc.conv_templates["qwen-7b-chat"])
    assert Template.from_worker(qwen).numbering == NUMBERING_0236  # CHATML = 9 in 0.2.36
    head_int_old_keys = qwen | {"sep_style": 10}  # git builds of mid-2024: new ints, old keys
    template = Template.from_worker(head_int_old_keys)
    assert (template.style, template.numbering) == ("CHATML", NUMBERING_HEAD)
    custom = qwen | {"name": "my-chatml"}
    assert Template.from_worker(custom).style == "CHATML"
    assert Template.from_worker(custom | {"max_image_size_mb": None}).style == "CHATGLM"
    with pytest.raises(APIError) as info:
        Template.from_worker(custom | {"sep_style": 20})  # 0.2.36 stops at 19
    assert info.value.status == 500


@pytest.mark.parametrize(
    "change",
    [
        {"name": "yandexgpt", "sep_style": None},
        {"sep_style": 99},
        {"sep_style": True},
        {"system_template": "{system_message} {other}"},
        {"sep2": None},
        {"stop_token_ids": ["2"]},
        {"roles": ["USER"]},
    ],
)
def test_undecodable_template_is_a_500(fc, change):
    conv = worker_dict(fc.conv_templates["vicuna_v1.1"]) | change
    with pytest.raises(APIError) as info:
        Template.from_worker(conv, "http://gpu-7:21002")
    error = info.value
    assert (error.status, error.code, error.fastchat_code) == (500, "unsupported_template", 50001)
    assert error.address == "http://gpu-7:21002" and repr(conv["name"]) in error.message


def test_missing_key_is_a_500(fc):
    conv = worker_dict(fc.conv_templates["vicuna_v1.1"])
    del conv["sep2"]
    with pytest.raises(APIError, match="missing sep2") as info:
        Template.from_worker(conv, "http://gpu-7:21002")
    assert info.value.status == 500


@pytest.mark.parametrize("role", ["tool", "function", "ipython"])
def test_unknown_role_is_a_400(fc, role):
    template = Template.from_worker(worker_dict(fc.conv_templates["vicuna_v1.1"]))
    with pytest.raises(APIError) as info:
        template.render([user("Hello!"), {"role": role, "content": "42"}])
    error = info.value
    assert (error.status, error.param, error.code) == (400, "messages[1].role", "unsupported_value")
    assert f"'{role}'" in error.message


def test_developer_equals_system(fc):
    template = Template.from_worker(worker_dict(fc.conv_templates["llama-2"]))
    as_developer = template.render([{"role": "developer", "content": "Be brief."}, user("Hi")])
    assert as_developer == template.render([system("Be brief."), user("Hi")])
    assert as_developer.text.startswith("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]")


def test_images_into_a_text_only_style_are_a_400(fc):
    template = Template.from_worker(worker_dict(fc.conv_templates["llama-2"], NUMBERING_HEAD))
    with pytest.raises(APIError) as info:
        template.render([user([text("What is this?"), image("http://x/cat.png")])])
    error = info.value
    assert (error.status, error.param, error.code) == (400, "messages", "unsupported_value")
    assert "'llama-2'" in error.message


def test_string_messages_are_the_prompt(fc):
    template = Template.from_worker(worker_dict(fc.conv_templates["one_shot"]))
    assert template.render("verbatim {x}") == Prompt("verbatim {x}", [])


def test_gateway_does_not_import_fastchat():
    code = "import sys, fastchat_api.conversation; print('fastchat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
