"""A chat request's tool fields checked (``schemas`` declares them): ``tools``,
``tool_choice``, ``parallel_tool_calls``, the legacy ``functions`` and ``function_call``, and
the tool history in ``messages``, as OpenAI's API reference defines them. Every error names
its field (``tools[0].function.name``)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from marshmallow import ValidationError, fields

from ..protocol import Choice, Function, History, Tools
from ..structured import schema_problem

MAX_TOOLS = 128  # OpenAI's limit on tools (and functions) in one request
MAX_TEXT = 10 * 1024 * 1024  # schemas.MAX_TEXT (schemas imports this module)
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a function's name, as OpenAI allows it
_NAME_RULE = "Must be 1 to 64 letters, digits, underscores or dashes."
_HISTORY_ROLES = frozenset({"tool", "function"})


def _function(spec: Any) -> Function:
    """One function definition: ``name``, ``description``, ``parameters``, ``strict``."""
    if not isinstance(spec, dict):
        raise ValidationError("Must be an object with 'name' and 'parameters'.")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValidationError({"name": [_NAME_RULE]})
    description = spec.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_TEXT):
        raise ValidationError({"description": [f"Must be a string of at most {MAX_TEXT} characters."]})
    parameters = spec.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": ["Must be a JSON Schema object."]})
    problem = schema_problem(parameters)
    if problem is not None:
        raise ValidationError({"parameters": [problem]})
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ValidationError({"strict": ["Must be a boolean."]})
    return Function(name, description or "", parameters, bool(strict))


def _listed(value: Any, read: Any) -> tuple[Function, ...]:
    """A list of definitions, each read by ``read``; unique names."""
    if not isinstance(value, list):
        raise ValidationError("Must be a list.")
    if len(value) > MAX_TOOLS:
        raise ValidationError(f"{len(value)} items, more than the {MAX_TOOLS} allowed.")
    functions, seen = [], set()
    for index, item in enumerate(value):
        try:
            function = read(item)
        except ValidationError as exc:
            raise ValidationError({index: exc.messages}) from None
        if function.name in seen:
            raise ValidationError({index: {"function": {"name": [f"{function.name!r} is defined twice."]}}})
        seen.add(function.name)
        functions.append(function)
    return tuple(functions)


def _tool(item: Any) -> Function:
    """One of ``tools``: ``{"type": "function", "function": {...}}``."""
    if not isinstance(item, dict) or item.get("type") != "function":
        raise ValidationError({"type": ["Must be 'function': functions are the only tools here."]})
    try:
        return _function(item.get("function"))
    except ValidationError as exc:
        raise ValidationError({"function": exc.messages}) from None


class ToolList(fields.Field[tuple[Function, ...]]):
    """``tools``: function tools (``[]``, none, is accepted)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> tuple[Function, ...]:
        return _listed(value, _tool)

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": ["array", "null"], "maxItems": MAX_TOOLS, "items": {
            "type": "object", "required": ["type", "function"], "properties": {
                "type": {"enum": ["function"]}, "function": _FUNCTION_SCHEMA}}}


class FunctionList(fields.Field[tuple[Function, ...]]):
    """The legacy ``functions``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> tuple[Function, ...]:
        return _listed(value, _function)

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": ["array", "null"], "maxItems": MAX_TOOLS, "items": _FUNCTION_SCHEMA}


_FUNCTION_SCHEMA = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": f"^{NAME.pattern}$"},
    "description": {"type": "string"},
    "parameters": {"type": "object"},
    "strict": {"type": ["boolean", "null"]}}}
_MODES = ("none", "auto", "required")


class ToolChoice(fields.Field[tuple[Choice, str | None]]):
    """``tool_choice`` (``none``, ``auto``, ``required`` or ``{"type": "function", "function":
    {"name": ...}}``), or with ``legacy`` the legacy ``function_call`` (``none``, ``auto`` or
    ``{"name": ...}``): the choice and the function named."""

    def __init__(self, legacy: bool = False, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)
        self.legacy = legacy

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> tuple[Choice, str | None]:
        modes = _MODES[:2] if self.legacy else _MODES
        if value in modes:
            return value, None
        if not isinstance(value, dict):
            raise ValidationError(f"Must be one of {', '.join(map(repr, modes))} or a named function.")
        if self.legacy:
            return "named", _named(value.get("name"), "name")
        if value.get("type") != "function" or not isinstance(value.get("function"), dict):
            raise ValidationError({"function": ["Must be {'type': 'function', 'function': {'name': ...}}."]})
        return "named", _named(value["function"].get("name"), "function", "name")

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        if self.legacy:
            named = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
            return {"anyOf": [{"enum": [*_MODES[:2], None]}, named]}
        named = {"type": "object", "required": ["type", "function"], "properties": {
            "type": {"enum": ["function"]}, "function": {
                "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}
        return {"anyOf": [{"enum": [*_MODES, None]}, named]}


def _named(name: Any, *path: str) -> str:
    if isinstance(name, str) and NAME.fullmatch(name):
        return name
    messages: Any = [_NAME_RULE]
    for key in reversed(path):
        messages = {key: messages}
    raise ValidationError(messages)


def check_history(message: dict[str, Any], role: str) -> bool:
    """Whether ``message`` is tool history (a ``400`` naming the key when it is malformed):
    a ``tool`` message needs ``tool_call_id``, a ``function`` message ``name``, and an
    assistant message's ``tool_calls`` (or ``function_call``) OpenAI's shape."""
    if role == "tool" or role == "function":
        _string(message, "tool_call_id" if role == "tool" else "name")
        _results_text(message)
        return True
    if role != "assistant":
        return False
    calls, legacy = message.get("tool_calls"), message.get("function_call")
    if calls is not None:
        if not isinstance(calls, list):
            raise ValidationError({"tool_calls": ["Must be a list of tool calls."]})
        for index, call in enumerate(calls):
            _past_call(call, "tool_calls", index)
    if legacy is not None:
        _call_function(legacy, "function_call")
    return bool(calls) or legacy is not None


def history_schemas(text: dict[str, Any], max_items: int) -> list[dict[str, Any]]:
    """The JSON Schemas of tool history messages (``tool``, ``function``, an assistant's
    calls), for ``/openapi.json``; ``text`` is a message text's."""
    content = {"anyOf": [text, {"type": "array", "maxItems": max_items, "items": {
        "type": "object", "required": ["type", "text"],
        "properties": {"type": {"enum": ["text"]}, "text": text}}}]}
    key = {"type": "string", "minLength": 1, "maxLength": 1024}
    call = {"type": "object", "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}}}
    return [
        {"type": "object", "required": ["role", "tool_call_id", "content"],
         "properties": {"role": {"enum": ["tool"]}, "tool_call_id": key, "content": content}},
        {"type": "object", "required": ["role", "name", "content"],
         "properties": {"role": {"enum": ["function"]}, "name": key,
                        "content": {"anyOf": [content, {"type": "null"}]}}},
        {"type": "object", "required": ["role", "tool_calls"], "properties": {
            "role": {"enum": ["assistant"]}, "content": {"anyOf": [text, {"type": "null"}]},
            "tool_calls": {"type": "array", "maxItems": max_items, "items": {
                "type": "object", "required": ["id", "type", "function"], "properties": {
                    "id": key, "type": {"enum": ["function"]}, "function": call}}}}},
    ]


def _results_text(message: dict[str, Any]) -> None:
    """A tool result is text: image parts have no place in any format's result turn."""
    content = message.get("content")
    if isinstance(content, list) and any(isinstance(part, dict) and part.get("type") != "text" for part in content):
        raise ValidationError({"content": ["A tool result is text: only 'text' parts."]})


def _string(message: dict[str, Any], key: str) -> None:
    value = message.get(key)
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise ValidationError({key: [f"Missing, or not a string of 1 to 1024 characters: a "
                                     f"{message.get('role')} message needs its {key}."]})


def _past_call(call: Any, key: str, index: int) -> None:
    if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
        raise ValidationError({key: {index: {"id": ["Must be the call's id, a string."]}}})
    if call.get("type", "function") != "function":
        raise ValidationError({key: {index: {"type": ["Must be 'function'."]}}})
    try:
        _call_function(call.get("function"), "function")
    except ValidationError as exc:
        raise ValidationError({key: {index: exc.messages}}) from None


def _call_function(function: Any, key: str) -> None:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ValidationError({key: {"name": ["Must be the function's name, a string."]}})
    if not isinstance(function.get("arguments"), str):
        raise ValidationError({key: {"arguments": ["Must be the arguments as a JSON string."]}})


def tools_of(data: dict[str, Any]) -> Tools | None:
    """The request's :class:`~fastchat_api.protocol.Tools` from its loaded fields (removed
    from ``data``); None when it offers no tools and holds no tool history. Conflicts are a
    400 naming the field."""
    tools, functions = data.pop("tools", None) or (), data.pop("functions", None) or ()
    choice, legacy_choice = data.pop("tool_choice", None), data.pop("function_call", None)
    parallel = data.pop("parallel_tool_calls", None)
    if tools and functions:
        raise ValidationError("Send 'tools' or the legacy 'functions', not both.", "functions")
    legacy = bool(functions)
    offered = tools or functions
    default: tuple[Choice, str | None] = ("auto" if offered else "none", None)
    mode, name = (legacy_choice if legacy else choice) or default
    _check_choice(offered, mode, name, "function_call" if legacy else "tool_choice")
    idle = mode == "none" or not offered  # ``auto`` with nothing offered asks for no call either
    if idle and type(data.get("messages")) is not History:
        return None
    if not idle:
        _check_company(data)
    return Tools(offered, mode, name, parallel is not False and not legacy, legacy)


def _check_choice(offered: tuple[Function, ...], mode: str, name: str | None, field: str) -> None:
    if mode in ("required", "named") and not offered:
        raise ValidationError(f"{mode!r} needs tools to choose from; none were sent.", field)
    if mode == "named" and name not in {function.name for function in offered}:
        path = {"name": [f"{name!r} is not one of the functions sent."]}
        raise ValidationError({field: path if field == "function_call" else {"function": path}})


def _check_company(data: dict[str, Any]) -> None:
    """Fields that cannot go with tools offered: a JSON ``response_format`` (one answer cannot
    be both a call and a JSON value; llama.cpp refuses the pair too), ``logprobs`` (they
    index the model's text, which a call is not) and a ready prompt string (no room for the
    tools in it)."""
    if data.get("response_format") is not None:
        raise ValidationError("A JSON response_format cannot be combined with tools: send one or "
                              "the other.", "response_format")
    if data.get("logprobs"):
        raise ValidationError("logprobs cannot be combined with tools here.", "logprobs")
    if isinstance(data.get("messages"), str):
        raise ValidationError("Tools need messages as a list: a ready prompt string leaves no "
                              "place to describe them.", "messages")
