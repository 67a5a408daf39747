"""FastChat conversation templates, rebuilt from the ``conv`` dict a worker sends.

In FastChat the API server, not the worker, turns chat messages into the prompt string, so a
drop-in must render every template byte for byte as ``Conversation.get_prompt()`` does. A worker
sends its separator style as a bare integer whose meaning changed between fschat 0.2.36 and
FastChat's HEAD; :meth:`Template.from_worker` decodes it once per worker, and
:meth:`Template.render` then runs on every chat request.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from fastchat_api.errors import APIError, ErrorCode, invalid_request
from fastchat_api.protocol import ContentPart, Messages

NUMBERING_0236 = "0.2.36"
NUMBERING_HEAD = "head"

# SeparatorStyle members in integer order (value = position + 1), as fschat 0.2.36 numbers them.
_STYLES_0236 = (
    "ADD_COLON_SINGLE",
    "ADD_COLON_TWO",
    "ADD_COLON_SPACE_SINGLE",
    "NO_COLON_SINGLE",
    "NO_COLON_TWO",
    "ADD_NEW_LINE_SINGLE",
    "LLAMA2",
    "CHATGLM",
    "CHATML",
    "CHATINTERN",
    "DOLLY",
    "RWKV",
    "PHOENIX",
    "ROBIN",
    "FALCON_CHAT",
    "CHATGLM3",
    "DEEPSEEK_CHAT",
    "METAMATH",
    "YUAN2",
)
# HEAD inserted LLAMA3 after LLAMA2, which shifts every later value by one, and appended three.
_STYLES_HEAD = _STYLES_0236[:7] + ("LLAMA3",) + _STYLES_0236[7:] + ("GEMMA", "CLLM", "DEFAULT")
_NUMBERINGS = {NUMBERING_0236: _STYLES_0236, NUMBERING_HEAD: _STYLES_HEAD}

# Every built-in template of FastChat HEAD by style; the name is what disambiguates the integer.
# (HEAD's "yandexgpt" has no style at all: a worker using it cannot start, so it is left out.)
_BUILTIN_NAMES = {
    "ADD_COLON_SINGLE": (
        "one_shot", "zero_shot", "openbuddy", "claude", "redpajama-incite", "snoozy",
        "polyglot_changgpt", "xgen", "aquila-chat", "phind",
    ),
    "ADD_COLON_TWO": (
        "vicuna_v1.1", "airoboros_v1", "airoboros_v2", "koala_v1", "alpaca", "manticore",
        "aquila", "llama2-chinese", "vigogne_chat_v2", "stable-vicuna",
    ),
    "ADD_COLON_SPACE_SINGLE": ("billa", "open-orca"),
    "NO_COLON_SINGLE": (
        "raw", "codegeex", "oasst_pythia", "oasst_llama", "stablelm", "baize", "h2ogpt",
        "baichuan-chat", "baichuan2-chat", "metharme", "xdan-v1", "yuan",
    ),
    "NO_COLON_TWO": ("cutegpt", "aquila-legacy", "aquila-v1"),
    "ADD_NEW_LINE_SINGLE": ("deepseek-coder", "tulu", "mpt-30b-instruct", "solar"),
    "LLAMA2": ("airoboros_v3", "mistral", "llama-2", "chinese-alpaca2", "vigogne_chat_v3"),
    "LLAMA3": ("llama-3",),
    "CHATGLM": ("chatglm", "chatglm2"),
    "CHATML": (
        "mpt-7b-chat", "mpt-30b-chat", "lemur-70b-chat", "starchat", "mistral-7b-openorca",
        "dolphin-2.2.1-mistral-7b", "OpenHermes-2.5-Mistral-7B",
        "Nous-Hermes-2-Mixtral-8x7B-DPO", "qwen-7b-chat", "Yi-34b-chat", "zephyr", "catppt",
        "TinyLlama", "orca-2", "llava-chatml",
    ),
    "CHATINTERN": ("internlm-chat",),
    "DOLLY": ("dolly_v2", "vigogne_instruct"),
    "RWKV": ("rwkv", "falcon"),
    "PHOENIX": ("phoenix", "ReaLM-7b-v1"),
    "ROBIN": ("Robin", "tigerbot"),
    "FALCON_CHAT": ("openchat_3.5", "tenyxchat", "falcon-chat"),
    "CHATGLM3": ("chatglm3",),
    "DEEPSEEK_CHAT": ("deepseek-chat",),
    "METAMATH": ("metamath",),
    "YUAN2": ("yuan2",),
    "GEMMA": ("gemma",),
    "CLLM": ("cllm",),
    "DEFAULT": (
        "api_based_default", "chatgpt", "gpt-4-turbo-2024-04-09", "gpt-mini", "pplxai",
        "claude-3-haiku-20240307", "claude-3-sonnet-20240229", "claude-3-5-sonnet-20240620-v2",
        "claude-3-5-sonnet-20240620", "claude-3-opus-20240229", "meta-llama-3.1",
        "meta-llama-3.1-sp", "bard", "gemini", "gemini-1.5-pro", "gemini-1.5-pro-002-test-sp",
        "steerlm", "grok-2", "grok-2-mini",
    ),
}
_STYLE_BY_NAME = {name: style for style, names in _BUILTIN_NAMES.items() for name in names}

# Styles whose get_prompt() takes a (text, images) user turn; FastChat crashes on the others.
_IMAGE_STYLES = {
    NUMBERING_0236: frozenset({"ADD_COLON_TWO"}),
    NUMBERING_HEAD: frozenset({"ADD_COLON_SINGLE", "ADD_COLON_TWO", "CHATML", "CLLM", "DEFAULT"}),
}
# Styles that concatenate sep / sep2: a template leaving them null would crash mid-conversation.
_NO_SEP = frozenset({"RWKV", "PHOENIX", "CHATGLM3", "LLAMA3", "DEFAULT"})
_WITH_SEP2 = frozenset({
    "ADD_COLON_TWO", "NO_COLON_TWO", "LLAMA2", "CHATINTERN", "DOLLY", "DEEPSEEK_CHAT",
    "METAMATH", "YUAN2", "CLLM",
})
_CONV_KEYS = (
    "name", "system_template", "system_message", "roles", "messages", "offset", "sep_style",
    "sep", "sep2", "stop_str", "stop_token_ids",
)
# Styles whose get_prompt() writes no system message at all.
_NO_SYSTEM = frozenset({"GEMMA"})
# Marks where the prefilled assistant text ends in a rendered prompt: the renderers write a
# turn's text followed by its separators, and the prompt is cut here (a private-use character,
# looked for from the end, so a message that holds it changes nothing).
_END_OF_PREFILL = "\ue000"
_IMAGE_PLACEHOLDER = "$$<image>$$"
_HEAD_IMAGE_PREFIX = "<image>\n"
_MAX_STYLE = len(_STYLES_HEAD)


class Prompt(NamedTuple):
    """What a chat request turns into: the prompt text and the image URLs sent beside it."""

    text: str
    images: list[str]


class _ImageTurn(str):
    """The text of a user turn sent as a content list in a style that takes images.

    FastChat stores such a turn as a ``(text, images)`` tuple, which is truthy even when its text
    is empty, so it renders as a full turn, never as the open slot an empty string gives.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return True


class Template:
    """One worker's conversation template, decoded once and rendered per request."""

    __slots__ = (
        "name", "system_template", "system_message", "roles", "messages", "offset", "style",
        "sep", "sep2", "stop_str", "stop_token_ids", "numbering",
        "_render", "_takes_images", "_placeholder",
    )

    def __init__(
        self,
        *,
        name: str,
        system_template: str,
        system_message: str,
        roles: tuple[str, ...],
        messages: tuple[tuple[str, str | None], ...],
        offset: int,
        style: str,
        sep: str,
        sep2: str,
        stop_str: str | list[str] | None,
        stop_token_ids: list[int] | None,
        numbering: str,
    ) -> None:
        self.name = name
        self.system_template = system_template
        self.system_message = system_message
        self.roles = roles
        self.messages = messages
        self.offset = offset
        self.style = style
        self.sep = sep
        self.sep2 = sep2
        self.stop_str = stop_str
        self.stop_token_ids = stop_token_ids
        self.numbering = numbering
        self._render = _RENDERERS[style]
        self._takes_images = style in _IMAGE_STYLES[numbering]
        self._placeholder = "" if style == "DEFAULT" else _IMAGE_PLACEHOLDER

    def __repr__(self) -> str:
        return f"Template({self.name!r}, {self.style}, numbering={self.numbering!r})"

    @classmethod
    def from_worker(cls, conv: dict[str, Any], worker: str = "") -> Template:
        """Decode ``/worker_get_conv_template``'s ``conv``; a 500 APIError if it cannot be."""
        name = conv.get("name") if isinstance(conv, dict) else None
        if not isinstance(name, str):
            raise _undecodable(worker, name, "the reply has no template name")
        missing = [key for key in _CONV_KEYS if key not in conv]
        if missing:
            raise _undecodable(worker, name, f"missing {', '.join(missing)}")
        style, numbering = _decode_style(conv, worker)
        _check_fields(conv, style, worker)
        return cls(
            name=name,
            system_template=conv["system_template"],
            system_message=conv["system_message"],
            roles=tuple(conv["roles"]),
            messages=tuple((role, text) for role, text in conv["messages"]),
            offset=conv["offset"],
            style=style,
            sep=_sep(conv["sep"]),
            sep2=_sep(conv["sep2"]),
            stop_str=conv["stop_str"],
            stop_token_ids=conv["stop_token_ids"],
            numbering=numbering,
        )

    def system_prompt(self, system_message: str) -> str:
        """The system block; the message is data, so braces in it stay literal."""
        return self.system_template.format(system_message=system_message)

    def render(self, messages: Messages, *, instruction: str = "", prefill: str = "",
               extra_roles: tuple[str, ...] = ()) -> Prompt:
        """Build the prompt as FastChat's API server does, from validated request messages.

        ``instruction`` is added to the system message (after a blank line), or to the last
        user message where the template writes no system message; ``prefill`` opens the
        assistant turn, written as the start of the model's own answer (``ASSISTANT: {``),
        not after the empty slot (``ASSISTANT:``). A ready prompt string (FastChat's
        ``messages`` string) is the client's own: ``prefill`` is appended to it, and
        ``instruction`` has no place in it. A message whose role is one of ``extra_roles``
        (a tool format's, such as llama-3's ``ipython``) is a turn of that role, written as the
        style writes any role's turn.
        """
        if isinstance(messages, str):
            return Prompt(messages + prefill, [])
        system = self.system_message
        turns: list[tuple[str, str | None]] = list(self.messages)
        with_images: list[tuple[int, list[str]]] = []
        user, assistant = self.roles[0], self.roles[1]
        for i, message in enumerate(messages):
            role = message["role"]
            content = message.get("content")
            if role == "user":
                if isinstance(content, list):
                    content, urls = self._user_parts(content)
                    if urls:
                        with_images.append((len(turns), urls))
                turns.append((user, content))
            elif role == "assistant":
                turns.append((assistant, _text_of(content)))
            elif role == "system" or role == "developer":
                system = _text_of(content) or ""
            elif role in extra_roles:
                turns.append((role, _text_of(content)))
            else:
                raise invalid_request(
                    f"Unsupported role '{role}' in messages[{i}]: FastChat conversation templates "
                    "take only system, developer, user and assistant messages",
                    param=f"messages[{i}].role",
                    code="unsupported_value",
                )
        if instruction:
            system = self._instruct(system, turns, instruction)
        if not prefill:
            turns.append((assistant, None))
            return Prompt(self._render(self, system, turns), self._images(with_images, len(turns)))
        turns.append((assistant, prefill + _END_OF_PREFILL))
        text = self._render(self, system, turns)
        return Prompt(text[: text.rindex(_END_OF_PREFILL)], self._images(with_images, len(turns)))

    def _instruct(self, system: str, turns: list[tuple[str, str | None]], instruction: str) -> str:
        """The system message with ``instruction`` added; where the template writes none
        (no ``{system_message}`` slot, or a style that drops it), the last user turn gets it
        and the system message is returned as it was."""
        if "{system_message}" in self.system_template and self.style not in _NO_SYSTEM:
            return f"{system}\n\n{instruction}" if system else instruction
        user = self.roles[0]
        for position in range(len(turns) - 1, -1, -1):
            role, text = turns[position]
            if role == user:
                turns[position] = (role, _with_text(text, f"\n\n{instruction}"))
                return system
        turns.append((user, instruction))
        return system

    def _user_parts(self, parts: list[ContentPart]) -> tuple[str, list[str]]:
        """A content-list user turn: its text (with image marks where the style wants them)."""
        urls = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
        text = "\n".join([part["text"] for part in parts if part["type"] == "text"])
        if self._takes_images:
            if urls and self.numbering == NUMBERING_HEAD:
                text = _HEAD_IMAGE_PREFIX * len(urls) + text
            return _ImageTurn(self._placeholder * len(urls) + text), urls
        if urls:
            raise invalid_request(
                f"The model's conversation template '{self.name}' does not accept images",
                param="messages",
                code="unsupported_value",
            )
        # FastChat would crash on a text-only list here; its text is what the client meant.
        return text, urls

    def _images(self, with_images: list[tuple[int, list[str]]], count: int) -> list[str]:
        """FastChat's get_images(): user positions (even, counted from ``offset``) only."""
        if not with_images:
            return []
        start = range(count)[self.offset :].start
        return [
            url
            for position, urls in with_images
            if position >= start and (position - start) % 2 == 0
            for url in urls
        ]


def _with_text(text: str | None, more: str) -> str:
    """A turn's text with ``more`` after it, keeping a turn with images a turn with images."""
    joined = (text or "") + more
    return _ImageTurn(joined) if isinstance(text, _ImageTurn) else joined


def _text_of(content: str | list[ContentPart] | None) -> str | None:
    """System/assistant content; a list's text parts are joined as for user turns."""
    if isinstance(content, list):
        return "\n".join([part["text"] for part in content if part["type"] == "text"])
    return content


def _undecodable(worker: str, name: Any, why: str) -> APIError:
    """The 500 for a template we cannot render faithfully: better no answer than a wrong prompt."""
    return APIError(
        f"The worker uses conversation template {name!r}, which this server cannot decode: {why}",
        status=500,
        code="unsupported_template",
        fastchat_code=ErrorCode.INTERNAL_ERROR,
        headers={"x-should-retry": "false"},  # the openai client would retry a 500 in vain
        address=worker,
    )


def _decode_style(conv: dict[str, Any], worker: str) -> tuple[str, str]:
    """The style name and the worker's numbering, from the template name first, then the keys."""
    name, value = conv["name"], conv["sep_style"]
    if type(value) is not int or not 1 <= value <= _MAX_STYLE:
        raise _undecodable(worker, name, f"sep_style {value!r} is not a separator style")
    by_keys = (
        NUMBERING_HEAD
        if "system_message_vision" in conv or "max_image_size_mb" in conv
        else NUMBERING_0236
    )
    style = _STYLE_BY_NAME.get(name)
    if style is None:
        styles = _NUMBERINGS[by_keys]
        if value > len(styles):
            raise _undecodable(worker, name, f"sep_style {value} is unknown to FastChat {by_keys}")
        return styles[value - 1], by_keys
    fits = [n for n, styles in _NUMBERINGS.items() if styles[value - 1 : value] == (style,)]
    # A built-in's integer names its numbering when only one numbering maps it to the style.
    return style, fits[0] if len(fits) == 1 else by_keys


def _check_fields(conv: dict[str, Any], style: str, worker: str) -> None:
    """Refuse a template whose fields would make FastChat crash or render garbage."""
    name = conv["name"]

    def fail(why: str) -> APIError:
        return _undecodable(worker, name, why)

    for key in ("system_template", "system_message"):
        if not isinstance(conv[key], str):
            raise fail(f"{key} is not a string")
    try:
        conv["system_template"].format(system_message="")
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise fail(f"system_template does not format ({exc!r})") from None
    roles = conv["roles"]
    if not isinstance(roles, (list, tuple)) or len(roles) < 2 or not _all_str(roles):
        raise fail("roles is not a list of at least two strings")
    presets = conv["messages"]
    if not isinstance(presets, (list, tuple)) or not all(
        isinstance(m, (list, tuple)) and len(m) == 2 and isinstance(m[0], str)
        and (m[1] is None or isinstance(m[1], str))
        for m in presets
    ):
        raise fail("messages is not a list of [role, text] pairs")
    if type(conv["offset"]) is not int:
        raise fail("offset is not an integer")
    if style not in _NO_SEP and not isinstance(conv["sep"], str):
        raise fail(f"style {style} needs a string sep")
    if style in _WITH_SEP2 and not isinstance(conv["sep2"], str):
        raise fail(f"style {style} needs a string sep2")
    stop_str = conv["stop_str"]
    if not (stop_str is None or isinstance(stop_str, str) or _all_str_list(stop_str)):
        raise fail("stop_str is not a string or a list of strings")
    ids = conv["stop_token_ids"]
    if ids is not None and not (
        isinstance(ids, list) and all(type(i) is int for i in ids)
    ):
        raise fail("stop_token_ids is not a list of integers")


def _sep(value: Any) -> str:
    """A separator as the renderers take it: ``_check_fields`` made sure it is a string where
    the style reads it, so anything else (null, mostly) is one the style never reads."""
    return value if isinstance(value, str) else ""


def _all_str(items: Any) -> bool:
    return all(isinstance(item, str) for item in items)


def _all_str_list(value: Any) -> bool:
    return isinstance(value, list) and _all_str(value)


# --- Renderers: one per style, (template, system message, turns) -> prompt. -------------------
# A turn's text is "empty" when None or "": it then renders as the open slot of that role.

Turns = list[tuple[str, str | None]]


def _colon(turns: Turns, seps: tuple[str, str], out: list[str]) -> str:
    """``role: text`` + alternating separator; the shape most styles share."""
    for i, (role, text) in enumerate(turns):
        out.append(f"{role}: {text}{seps[i & 1]}" if text else f"{role}:")
    return "".join(out)


def _bare(turns: Turns, seps: tuple[str, str], out: list[str]) -> str:
    """``role`` + ``text`` with nothing between, + alternating separator."""
    for i, (role, text) in enumerate(turns):
        out.append(f"{role}{text}{seps[i & 1]}" if text else role)
    return "".join(out)


def _newline(turns: Turns, tail: str, out: list[str]) -> str:
    """``role`` newline ``text`` + tail."""
    for role, text in turns:
        out.append(f"{role}\n{text}{tail}" if text else f"{role}\n")
    return "".join(out)


def _colon_newline(turns: Turns, tails: tuple[str, str], out: list[str]) -> str:
    """``role:`` newline ``text`` + alternating tail."""
    for i, (role, text) in enumerate(turns):
        out.append(f"{role}:\n{text}{tails[i & 1]}" if text else f"{role}:\n")
    return "".join(out)


def _add_colon_single(t: Template, system: str, turns: Turns) -> str:
    return _colon(turns, (t.sep, t.sep), [t.system_prompt(system), t.sep])


def _add_colon_two(t: Template, system: str, turns: Turns) -> str:
    return _colon(turns, (t.sep, t.sep2), [t.system_prompt(system), t.sep])


def _deepseek_chat(t: Template, system: str, turns: Turns) -> str:
    return _colon(turns, (t.sep, t.sep2), [t.system_prompt(system)])


def _cllm(t: Template, system: str, turns: Turns) -> str:
    """Only the last user turn and the open slot: the model is trained without history."""
    return _colon(turns[-2:], (t.sep, t.sep2), [t.system_prompt(system), t.sep])


def _falcon_chat(t: Template, system: str, turns: Turns) -> str:
    start = t.system_prompt(system) + t.sep if system else ""
    return _colon(turns, (t.sep, t.sep), [start])


def _default(t: Template, system: str, turns: Turns) -> str:
    return _colon(turns, ("\n", "\n"), [t.system_prompt(system), "\n"])


def _add_colon_space_single(t: Template, system: str, turns: Turns) -> str:
    sep = t.sep
    out = [t.system_prompt(system), sep]
    for role, text in turns:
        out.append(f"{role}: {text}{sep}" if text else f"{role}: ")
    return "".join(out)


def _no_colon_single(t: Template, system: str, turns: Turns) -> str:
    return _bare(turns, (t.sep, t.sep), [t.system_prompt(system)])


def _no_colon_two(t: Template, system: str, turns: Turns) -> str:
    return _bare(turns, (t.sep, t.sep2), [t.system_prompt(system)])


def _add_new_line_single(t: Template, system: str, turns: Turns) -> str:
    prompt = t.system_prompt(system)
    return _newline(turns, t.sep, [prompt + t.sep if prompt else ""])


def _chatml(t: Template, system: str, turns: Turns) -> str:
    prompt, tail = t.system_prompt(system), t.sep + "\n"
    return _newline(turns, tail, [prompt + tail if prompt else ""])


def _robin(t: Template, system: str, turns: Turns) -> str:
    return _colon_newline(turns, (t.sep, t.sep), [t.system_prompt(system), t.sep])


def _dolly(t: Template, system: str, turns: Turns) -> str:
    return _colon_newline(turns, (t.sep, t.sep2 + "\n\n"), [t.system_prompt(system)])


def _metamath(t: Template, system: str, turns: Turns) -> str:
    """Odd turns put sep2 (a chain-of-thought cue) before the answer, not after it."""
    prompt, sep, cue = t.system_prompt(system), t.sep, ": " + t.sep2
    out = [prompt + sep if prompt else ""]
    for i, (role, text) in enumerate(turns):
        if i & 1:
            out.append(f"{role}{cue}{text}" if text else f"{role}{cue}")
        else:
            out.append(f"{role}:\n{text}{sep}" if text else f"{role}:\n")
    return "".join(out)


def _llama2(t: Template, system: str, turns: Turns) -> str:
    """Tags follow position, not the stored role; the first text rides on the opening [INST]."""
    tags, seps = t.roles, (t.sep, t.sep2)
    out = [t.system_prompt(system) if system else "[INST] "]
    for i, (_, text) in enumerate(turns):
        tag = tags[i & 1]
        if not text:
            out.append(tag)
        elif i == 0:
            out.append(f"{text} ")
        else:
            out.append(f"{tag} {text}{seps[i & 1]}")
    return "".join(out)


def _llama3(t: Template, system: str, turns: Turns) -> str:
    out = ["<|begin_of_text|>", t.system_prompt(system) if system else ""]
    for role, text in turns:
        out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n")
        if text:
            out.append(f"{text.strip()}<|eot_id|>")
    return "".join(out)


def _chatglm(t: Template, system: str, turns: Turns) -> str:
    """Rounds are numbered per user turn; chatglm2 counts from 1, chatglm from 0."""
    prompt, sep = t.system_prompt(system), t.sep
    first = 1 if t.name == "chatglm2" else 0
    out = [prompt + sep if prompt else ""]
    for i, (role, text) in enumerate(turns):
        if not i & 1:
            out.append(f"[Round {i // 2 + first}]{sep}")
        out.append(f"{role}：{text}{sep}" if text else f"{role}：")
    return "".join(out)


def _chatglm3(t: Template, system: str, turns: Turns) -> str:
    out = [t.system_prompt(system) if system else ""]
    for role, text in turns:
        out.append(f"{role}\n{text}" if text else role)
    return "".join(out)


def _chatintern(t: Template, system: str, turns: Turns) -> str:
    seps = (t.sep, t.sep2)
    out = [t.system_prompt(system)]
    for i, (role, text) in enumerate(turns):
        if not i & 1:
            out.append("<s>")
        out.append(f"{role}:{text}{seps[i & 1]}\n" if text else f"{role}:")
    return "".join(out)


def _rwkv(t: Template, system: str, turns: Turns) -> str:
    """Blank lines inside a message are squeezed once: a blank line ends an RWKV turn."""
    out = [t.system_prompt(system)]
    for role, text in turns:
        if text:
            text = text.replace("\r\n", "\n").replace("\n\n", "\n")
            out.append(f"{role}: {text}\n\n")
        else:
            out.append(f"{role}:")
    return "".join(out)


def _phoenix(t: Template, system: str, turns: Turns) -> str:
    out = [t.system_prompt(system)]
    for role, text in turns:
        out.append(f"{role}: <s>{text}</s>" if text else f"{role}: <s>")
    return "".join(out)


def _yuan2(t: Template, system: str, turns: Turns) -> str:
    """Roles are not written; FastChat strips trailing '<', 'n', '>' characters (a set, not a
    suffix, so a final 'n' of the text goes too), and the result must match it."""
    out = [t.system_prompt(system) + t.sep2 if system else ""]
    out.extend(f"{text}<n>" for _, text in turns if text)
    return "".join(out).rstrip("<n>") + t.sep


def _gemma(t: Template, system: str, turns: Turns) -> str:
    """Gemma has no system turn, so FastChat drops the system message."""
    sep = t.sep
    out = ["<bos>"]
    for role, text in turns:
        out.append(
            f"<start_of_turn>{role}\n{text}{sep}" if text else f"<start_of_turn>{role}\n"
        )
    return "".join(out)


_RENDERERS: dict[str, Callable[[Template, str, Turns], str]] = {
    "ADD_COLON_SINGLE": _add_colon_single,
    "ADD_COLON_TWO": _add_colon_two,
    "ADD_COLON_SPACE_SINGLE": _add_colon_space_single,
    "NO_COLON_SINGLE": _no_colon_single,
    "NO_COLON_TWO": _no_colon_two,
    "ADD_NEW_LINE_SINGLE": _add_new_line_single,
    "LLAMA2": _llama2,
    "LLAMA3": _llama3,
    "CHATGLM": _chatglm,
    "CHATML": _chatml,
    "CHATINTERN": _chatintern,
    "DOLLY": _dolly,
    "RWKV": _rwkv,
    "PHOENIX": _phoenix,
    "ROBIN": _robin,
    "FALCON_CHAT": _falcon_chat,
    "CHATGLM3": _chatglm3,
    "DEEPSEEK_CHAT": _deepseek_chat,
    "METAMATH": _metamath,
    "YUAN2": _yuan2,
    "GEMMA": _gemma,
    "CLLM": _cllm,
    "DEFAULT": _default,
}
