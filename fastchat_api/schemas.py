"""Request schemas: FastChat's protocol, checked once at the door with marshmallow.

Instances are built once at import (a schema per request costs three times as much). Each
body is read in one of two modes (``compat.strict``):

- FastChat's (the default): values are read with FastChat's coercions (``coercion``), and a
  field this server does not honour is accepted and ignored; the names of such fields are
  returned beside the body, for the ``X-Ignored-Params`` header, the access log and a metric;
- OpenAI's: values must have their JSON type, and unknown or unsupported fields are a 400.

In both, a field whose absence would silently change the shape of the answer (vLLM's guided
decoding, audio, ...) is refused unless its value asks for nothing,
and every unknown or unsupported field of a body is named in one 400. Any other failure is a
400 whose ``param`` is the path of the first bad field.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Awaitable, Callable, Mapping, Sized, TypeVar

from aiohttp import web
from marshmallow import (
    EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema,
)
from marshmallow.experimental.context import Context

from . import bodies, errors, metrics, protocol, structured
from .coercion import NotCoercible, to_bool, to_float, to_int, to_str
from .fastchat_rules import NO_LIMIT as MAX_TOKENS  # max_tokens, before the clamp to the context
from .fastchat_rules import RANGES
from .record import record_of
from .tools import request as tool_fields
from .typedefs import config_key

# What one request may ask for. Past these a request costs the workers or this process far more
# than any client plausibly needs; where OpenAI sets a limit, it is OpenAI's.
MAX_ITEMS = 2048  # messages, content parts, prompts, embedding inputs, token checks
MAX_TEXT = 10 * 1024 * 1024  # characters of one message content, prompt or input
MAX_NAME = 1024  # characters of a model name, role, user and each stop string
MAX_STOPS = 64  # stop strings (OpenAI takes 4): workers look for every one after every token
MAX_N = 128  # n and best_of; a completion's prompts times n is at most MAX_ITEMS
MAX_TOP_LOGPROBS = 20  # chat's top_logprobs, as OpenAI
INT64 = (-(2**63), 2**63 - 1)  # what workers read (and orjson writes)


def _strict() -> bool:
    """Whether the body being loaded is read in OpenAI's strict mode (set by :func:`load`)."""
    return bool(Context.get(False))


class _AtMost(validate.Length):
    """A validator refusing more than ``limit`` characters or items, with the count said (a
    ``Length``, so that the API document states the limit)."""

    def __init__(self, limit: int, unit: str) -> None:
        super().__init__(max=limit)
        self.limit, self.unit = limit, unit

    def __call__(self, value: Sized) -> Sized:  # type: ignore[override]
        if len(value) > self.limit:
            raise ValidationError(f"{len(value)} {self.unit}, more than the {self.limit} allowed.")
        return value


_check_items = _AtMost(MAX_ITEMS, "items")
_check_text = _AtMost(MAX_TEXT, "characters")
_check_name = _AtMost(MAX_NAME, "characters")
_check_stops = _AtMost(MAX_STOPS, "stop strings")

_NAME_SCHEMA = {"type": "string", "maxLength": MAX_NAME}
_TEXT_SCHEMA = {"type": "string", "maxLength": MAX_TEXT}


def _path(messages: Any) -> tuple[str, str]:
    """The first error's field path in OpenAI's ``a[0].b`` notation, and its text."""
    path = ""
    while isinstance(messages, dict):
        key, messages = next(iter(messages.items()))
        if key == "_schema":
            continue
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
    if isinstance(messages, list):
        messages = messages[0] if messages else "Invalid value."
    return path, str(messages)


_REQUIRED = fields.Field.default_error_messages["required"]


def validation_error(exc: ValidationError, schema: Schema) -> errors.APIError:
    """A 400 (FastChat's 40001) naming the first offending parameter: ``code`` is
    ``missing_required_parameter`` for a required field left out, the field's own code for
    a value it cannot honour (``unsupported_value``), else ``invalid_value``."""
    param, reason = _path(exc.messages)
    if not param:
        return errors.invalid_request(reason, code="invalid_value")
    if reason == _REQUIRED:
        return errors.invalid_request(f"Missing required parameter: '{param}'.", param=param,
                                      code="missing_required_parameter")
    field = schema.fields.get(param.partition(".")[0].partition("[")[0])
    code = getattr(field, "unsupported_codes", {}).get(reason, "invalid_value")
    return errors.invalid_request(f"Invalid value for '{param}': {reason}", param=param, code=code)


def _refusal(unknown: list[str], refused: dict[str, "Refused"], messages: Mapping[str, Any]) -> errors.APIError:
    """One 400 naming every unknown and every unsupported field of a body (OpenAI names them
    all at once): the unknown ones first, then each refused field's reason."""
    sentences = []
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        sentences.append(f"Unrecognized request argument{plural} supplied: {', '.join(unknown)}")
    sentences += [_path({name: messages[name]})[1] for name in refused]
    if len(sentences) > 1:
        sentences = [text if text.endswith(".") else text + "." for text in sentences]
    code = "unknown_parameter" if unknown else next(iter(refused.values())).code
    return errors.invalid_request(" ".join(sentences), param=[*unknown, *refused][0], code=code)


def load(schema: Schema, data: Mapping[str, Any], *, strict: bool = False) -> Any:
    """Validate ``data`` with a prebuilt schema: the typed body of ``protocol``, or the
    gateway's 400. ``strict`` reads it in OpenAI's mode (see the module's docstring)."""
    declared = schema.load_fields
    unknown = [name for name in data if name not in declared] if strict else []
    try:
        with Context[bool](strict):
            body = _sparse(schema, data).load(data, unknown=EXCLUDE)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        refused = {name: field for name in messages
                   if isinstance(field := declared.get(name), Refused)}
        if unknown or refused:
            raise _refusal(unknown, refused, messages) from None
        raise validation_error(exc, schema) from None
    if unknown:
        raise _refusal(unknown, {}, {})
    return body


def ignored_fields(schema: Schema, data: Mapping[str, Any]) -> list[str]:
    """The fields of a loaded body that have no effect here, in body order: unknown ones, and
    declared ones that are accepted without being honoured (see :class:`Ignored`)."""
    declared = schema.load_fields
    return [name for name, value in data.items() if _has_no_effect(declared.get(name), value)]


def _has_no_effect(field: fields.Field[Any] | None, value: Any) -> bool:
    return field is None or (isinstance(field, Ignored) and not field.asks_nothing(value))


_SPARSE: dict[tuple[int, frozenset[str]], Schema] = {}
_MAX_SPARSE = 256


def _sparse(schema: Schema, data: Mapping[str, Any]) -> Schema:
    """The schema narrowed to the fields this body carries, plus the required ones.

    marshmallow visits every declared field on every load, present or not; the chat schema
    declares every OpenAI parameter (to refuse the ones workers cannot honour) while a body
    carries a handful, so narrowing cuts a load to a third. Narrowed schemas are built once per
    combination of keys (a bounded number; past it, the full schema is used).
    """
    declared = schema.load_fields
    key = (id(schema), frozenset(declared.keys() & data.keys()))
    narrowed = _SPARSE.get(key)
    if narrowed is None:
        if len(_SPARSE) >= _MAX_SPARSE:
            return schema
        wanted = key[1] | {name for name, field in declared.items() if field.required}
        narrowed = _SPARSE[key] = type(schema)(only=sorted(wanted))
    return narrowed


def _read(field: fields.Field[Any], read: Callable[[Any, bool], Any], value: Any) -> Any:
    """``value`` read by a ``coercion`` function in the current mode; the field's "invalid"
    error otherwise."""
    try:
        return read(value, _strict())
    except NotCoercible:
        raise field.make_error("invalid") from None


def _text(value: Any) -> str:
    """A string inside a structure (a stop item, a message's content), read in the mode."""
    try:
        return to_str(value, _strict())
    except NotCoercible:
        raise ValidationError("Must be a string.") from None


class Bool(fields.Boolean):
    """A boolean, read as ``coercion.to_bool`` says."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        return bool(_read(self, to_bool, value))


class Float(fields.Float):
    """A finite number, read as ``coercion.to_float`` says."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        return float(_read(self, to_float, value))


class Str(fields.String):
    """A string, read as ``coercion.to_str`` says."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return str(_read(self, to_str, value))


class Int(fields.Integer):
    """An integer, read as ``coercion.to_int`` says, and at most 64 bits, which workers can
    read (and the gateway send: orjson refuses more)."""

    default_error_messages = {
        "invalid": "Not a valid integer.",
        "too_large": "Must fit in 64 bits (between -2**63 and 2**63 - 1).",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        number = int(_read(self, to_int, value))
        if not INT64[0] <= number <= INT64[1]:
            raise self.make_error("too_large")
        return number

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        """The 64-bit bounds, where the field's own range says no more."""
        return {"minimum": max(described.get("minimum", INT64[0]), INT64[0]),
                "maximum": min(described.get("maximum", INT64[1]), INT64[1])}


def _ranged(name: str) -> dict[str, Any]:
    """A field's metadata for the range FastChat checks (``fastchat_rules.RANGES``), so that
    the API document states it; the check itself stays FastChat's, with its texts."""
    low, high = RANGES[name]
    return {key: value for key, value in (("minimum", low), ("maximum", high)) if value is not None}


class Stop(fields.Field[str | list[str]]):
    """``stop``: a string or a list of strings."""

    default_error_messages = {"invalid": "Must be a string or a list of strings."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str | list[str]:
        try:
            stops = [_text(item) for item in value] if isinstance(value, list) else None
            text = _text(value) if stops is None else ""
        except ValidationError:
            raise self.make_error("invalid") from None
        if stops is None:
            _check_name(text)
            return text
        _check_stops(stops)
        for item in stops:
            _check_name(item)
        return stops

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        return {"anyOf": [_NAME_SCHEMA, {"type": "array", "items": _NAME_SCHEMA, "maxItems": MAX_STOPS},
                          {"type": "null"}]}


class TextInputs(fields.Field[list[str]]):
    """``prompt`` / ``input``: a string or a non-empty list of strings, loaded as a list.

    Token-id arrays are refused: a worker has no route that turns ids back into text, and
    FastChat's decoding with OpenAI's tiktoken gives other text for any other tokenizer.
    """

    default_error_messages = {
        "invalid": "Must be a string or a non-empty list of strings.",
        "tokens": "Token ids are not supported: FastChat workers have no route that turns token "
        "ids back into text, and decoding them with another tokenizer (FastChat uses OpenAI's "
        "tiktoken) would give the model different text. Send the text itself.",
    }
    unsupported_codes = {default_error_messages["tokens"]: "unsupported_value"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        if not isinstance(value, list):
            text = _read(self, to_str, value)
            _check_text(text)
            return [text]
        if not value:
            raise self.make_error("invalid")
        if all(isinstance(item, str) for item in value):
            _check_items(value)
            for item in value:
                _check_text(item)
            return value
        if all(type(item) is int or isinstance(item, list) for item in value):
            raise self.make_error("tokens")
        raise self.make_error("invalid")

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        return {"anyOf": [_TEXT_SCHEMA, {"type": "array", "items": _TEXT_SCHEMA, "minItems": 1,
                                         "maxItems": MAX_ITEMS}]}


class Refused(fields.Field[None]):
    """An OpenAI parameter FastChat workers cannot honour, whose absence would silently change
    the shape of the answer a client relies on (guided decoding, audio): refused in both
    modes, never dropped.

    Absent, null, or one of the ``inert`` values that ask for nothing (``modalities:
    ["text"]``) is accepted and loads as None; anything else is a
    400 whose message is ``reason`` and whose code is ``code``: ``unsupported_parameter``, or
    ``unsupported_value`` where other values of the field are honoured.
    """

    def __init__(self, reason: str, inert: tuple[Any, ...] = (),
                 code: str = "unsupported_parameter", **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)
        self.reason = reason
        self.inert = inert
        self.code = code

    def asks_nothing(self, value: Any) -> bool:
        return value is None or any(value == harmless for harmless in self.inert)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> None:
        if self.asks_nothing(value):
            return None
        raise ValidationError(self.reason)

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        """Only the values that ask for nothing (and null)."""
        return {"enum": [*self.inert, None]}


class Ignored(Refused):
    """An OpenAI or vLLM parameter this server accepts without honouring it, as FastChat does.

    By default any value is accepted, loads as None, and the field is named among the ignored
    ones (unless its value asks for nothing). Under ``compat.strict`` it is refused like a
    :class:`Refused` field when honouring it would change the answer (``seed``,
    ``logit_bias``, ...); fields that never change it (``metadata``, ``prompt_cache_key``)
    are accepted in both modes.
    """

    def __init__(self, reason: str, inert: tuple[Any, ...] = (), *, changes_answer: bool = True) -> None:
        super().__init__(reason, inert)
        self.changes_answer = changes_answer

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> None:
        if self.changes_answer and _strict():
            return super()._deserialize(value, attr, data, **kwargs)
        return None

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        """Any value (ignored), or under ``compat.strict`` what :class:`Refused` takes."""
        return super().json_schema(described) if self.changes_answer and _strict() else {}


_FORMAT_TYPES = ("text", "json_object", "json_schema")
_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ResponseFormat(fields.Field[protocol.ResponseFormat | None]):
    """``response_format``: ``{"type": "text"}`` (free text, as without it), ``{"type":
    "json_object"}``, or ``{"type": "json_schema", "json_schema": {"name", "schema",
    "strict"}}`` with a usable JSON Schema (``structured.schema_problem``); honoured by
    ``structured``."""

    default_error_messages = {
        "invalid": "Must be an object whose 'type' is 'text', 'json_object' or 'json_schema'.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> protocol.ResponseFormat | None:
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in _FORMAT_TYPES:
            raise self.make_error("invalid")
        if kind == "text":
            return None
        if kind == "json_object":
            return protocol.ResponseFormat("json_object")
        return _json_schema(value.get("json_schema"))

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        return {"anyOf": [
            {"type": "object", "required": ["type"],
             "properties": {"type": {"enum": ["text", "json_object"]}}},
            {"type": "object", "required": ["type", "json_schema"], "properties": {
                "type": {"enum": ["json_schema"]},
                "json_schema": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "pattern": _SCHEMA_NAME.pattern, "maxLength": 64},
                    "description": {"type": "string"},
                    "schema": {"type": "object"},
                    "strict": {"type": ["boolean", "null"]}}}}},
            {"type": "null"},
        ]}


def _json_schema(spec: Any) -> protocol.ResponseFormat:
    """``response_format.json_schema``, checked; errors name the key."""
    if not isinstance(spec, dict):
        raise ValidationError({"json_schema": ["Must be an object with 'name' and 'schema'."]})
    name = spec.get("name")
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise ValidationError({"json_schema": {"name": [
            "Must be 1 to 64 letters, digits, underscores or dashes."]}})
    schema = spec.get("schema")
    if schema is None:
        schema = {}
    if not isinstance(schema, dict):
        raise ValidationError({"json_schema": {"schema": ["Must be a JSON Schema object."]}})
    problem = structured.schema_problem(schema)
    if problem is not None:
        raise ValidationError({"json_schema": {"schema": [problem]}})
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ValidationError({"json_schema": {"strict": ["Must be a boolean."]}})
    return protocol.ResponseFormat("json_schema", name, schema, bool(strict))


def _guided(name: str) -> Refused:
    """vLLM's constrained-decoding fields: refused, as FastChat workers cannot constrain the
    output; JSON is what ``response_format`` gives."""
    return Refused(f"'{name}' is not supported: FastChat workers cannot constrain the output "
                   "(vLLM's guided decoding). For JSON, use 'response_format'.")


def _ignored(name: str, why: str, *, changes_answer: bool = True, inert: tuple[Any, ...] = ()) -> Ignored:
    return Ignored(f"'{name}' is not supported: {why}.", inert, changes_answer=changes_answer)


# Other fields that clients of vLLM, SGLang or llama.cpp servers send: unknown here (ignored,
# or a 400 under compat.strict), and counted by name in the ignored-fields metric; any other
# unknown name is counted as "other", so that the metric's labels stay few.
KNOWN_EXTRAS = frozenset({
    "add_generation_prompt", "add_special_tokens", "allowed_token_ids", "bad_words", "best_of",
    "cache_prompt", "chat_template", "chat_template_kwargs", "continue_final_message",
    "documents", "echo", "ignore_eos", "include_stop_str_in_output", "length_penalty",
    "min_p", "min_tokens", "mirostat", "mm_processor_kwargs", "n_probs", "priority",
    "prompt_logprobs", "repeat_penalty", "request_id", "return_tokens_as_token_ids",
    "skip_special_tokens", "spaces_between_special_tokens", "stop_token_ids", "tfs_z",
    "truncate_prompt_tokens", "typical_p", "use_beam_search",
})


def _content_part(part: Any) -> dict[str, Any]:
    """One part of a message's content list: text or image_url, as OpenAI defines them."""
    if not isinstance(part, dict):
        raise ValidationError("Must be an object.")
    kind = part.get("type")
    if kind == "text":
        text = _checked(_text, part.get("text"), "text")
        _checked(_check_text, text, "text")
        return {**part, "text": text}
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict):
            image = {}
        url = _checked(_text, image.get("url", ""), "image_url", "url")
        if not url:
            raise ValidationError({"image_url": {"url": ["Must be a non-empty string."]}})
        _checked(_check_text, url, "image_url", "url")
        return {**part, "image_url": {**image, "url": url}}
    raise ValidationError({"type": [f"Unknown content part type {kind!r}; use 'text' or 'image_url'."]})


_CONTENT = "Must be a string or a list of content parts."


def _message(message: Any) -> tuple[protocol.ChatMessage, bool]:
    """One chat message: a role and a content that is a string, a list of parts, or null
    (assistant and legacy function messages only, as OpenAI's types allow); numbers and booleans read as strings in FastChat's mode. With
    whether it is tool history (``tools.request.check_history``)."""
    if not isinstance(message, dict):
        raise ValidationError("Must be an object with 'role' and 'content'.")
    try:
        role = to_str(message.get("role"), _strict())
    except NotCoercible:
        role = ""
    if not role:
        raise ValidationError({"role": ["Missing or not a string."]})
    _checked(_check_name, role, "role")
    history = False
    if role == "tool" or role == "function" or (
            role == "assistant" and ("tool_calls" in message or "function_call" in message)):
        history = tool_fields.check_history(message, role)
    content = message.get("content")
    if content is None:
        if role != "assistant" and role != "function":
            raise ValidationError({"content": [_CONTENT]})
    elif isinstance(content, list):
        _checked(_check_items, content, "content")
        parts = []
        for index, part in enumerate(content):
            try:
                parts.append(_content_part(part))
            except ValidationError as exc:
                raise ValidationError({"content": {index: exc.messages}}) from None
        content = parts
    else:
        try:
            content = to_str(content, _strict())
        except NotCoercible:
            raise ValidationError({"content": [_CONTENT]}) from None
        _checked(_check_text, content, "content")
    return {**message, "role": role, "content": content}, history  # type: ignore[typeddict-item]


def _checked(check: Callable[[Any], Any], value: Any, *path: str) -> Any:
    """``check(value)``, its error reported under the keys of ``path``."""
    try:
        return check(value)
    except ValidationError as exc:
        messages = exc.messages
        for key in reversed(path):
            messages = {key: messages}
        raise ValidationError(messages) from None


_PART_SCHEMA = {"oneOf": [
    {"type": "object", "required": ["type", "text"],
     "properties": {"type": {"enum": ["text"]}, "text": _TEXT_SCHEMA}},
    {"type": "object", "required": ["type", "image_url"],
     "properties": {"type": {"enum": ["image_url"]}, "image_url": {
         "type": "object", "required": ["url"],
         "properties": {"url": {**_TEXT_SCHEMA, "minLength": 1}}}}},
]}
_MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant"]},
        "content": {"anyOf": [_TEXT_SCHEMA, {"type": "array", "items": _PART_SCHEMA, "maxItems": MAX_ITEMS}]},
    },
}


_ANY_MESSAGE_SCHEMA = {"anyOf": [_MESSAGE_SCHEMA, *tool_fields.history_schemas(_TEXT_SCHEMA, MAX_ITEMS)]}


class Messages(fields.Field[protocol.Messages]):
    """``messages``: a list of chat messages, or (FastChat's extension) a ready prompt string."""

    default_error_messages = {
        "invalid": "Must be a non-empty list of messages or a string.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> protocol.Messages:
        if not isinstance(value, list):
            text = _read(self, to_str, value)
            _check_text(text)
            return str(text)
        if not value:
            raise self.make_error("invalid")
        _check_items(value)
        messages, history = [], False
        for index, message in enumerate(value):
            try:
                checked, past = _message(message)
            except ValidationError as exc:
                raise ValidationError({index: exc.messages}) from None
            messages.append(checked)
            history = history or past
        return protocol.History(messages) if history else messages

    def json_schema(self, described: Mapping[str, Any]) -> dict[str, Any]:
        return {"anyOf": [_TEXT_SCHEMA, {"type": "array", "items": _ANY_MESSAGE_SCHEMA, "minItems": 1,
                                         "maxItems": MAX_ITEMS}]}


class StreamOptions(Schema):
    class Meta:
        unknown = EXCLUDE

    include_usage = Bool(load_default=False)


@functools.cache
def _field_names(target: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(target))


class _Body(Schema):
    """A request body: loads into ``target``, where a field left out or sent as null takes the
    target's (FastChat's) default. Unknown fields are found by :func:`load` and
    :func:`ignored_fields`, before marshmallow sees the body."""

    target: type

    class Meta:
        unknown = EXCLUDE

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        options = data.pop("stream_options", None)
        if options is not None:
            data["include_usage"] = options["include_usage"]
        wanted = _field_names(self.target)
        return self.target(**{k: v for k, v in data.items() if k in wanted and v is not None})


class SamplingSchema(_Body):
    """Fields every generation route shares: honoured, ignored, or refused with a reason."""

    model = Str(required=True, validate=_check_name)
    temperature = Float(allow_none=True, metadata=_ranged("temperature"))
    top_p = Float(allow_none=True, metadata=_ranged("top_p"))
    top_k = Int(allow_none=True, metadata={"not": {"enum": [0]}})
    n = Int(allow_none=True, validate=validate.Range(max=MAX_N), metadata=_ranged("n"))
    max_tokens = Int(allow_none=True, validate=validate.Range(max=MAX_TOKENS),
                     metadata=_ranged("max_tokens"))
    stop = Stop(allow_none=True)
    stream = Bool(allow_none=True)
    stream_options = fields.Nested(StreamOptions, allow_none=True)
    presence_penalty = Float(allow_none=True)
    frequency_penalty = Float(allow_none=True)
    repetition_penalty = Float(allow_none=True)
    user = Str(allow_none=True, validate=_check_name)
    seed = _ignored("seed", "FastChat workers sample with a process-wide seed")
    logit_bias = _ignored("logit_bias", "FastChat workers take no token biases", inert=({},))
    guided_json = _guided("guided_json")
    guided_regex = _guided("guided_regex")
    guided_choice = _guided("guided_choice")
    guided_grammar = _guided("guided_grammar")
    structured_outputs = _guided("structured_outputs")


_TOOL_KEYS = frozenset({"tools", "tool_choice", "functions", "function_call", "parallel_tool_calls"})


class ChatCompletionSchema(SamplingSchema):
    target = protocol.ChatRequest
    messages = Messages(required=True)
    max_completion_tokens = Int(allow_none=True, validate=validate.Range(max=MAX_TOKENS),
                                metadata=_ranged("max_completion_tokens"))
    tools = tool_fields.ToolList(allow_none=True)
    tool_choice = tool_fields.ToolChoice()
    functions = tool_fields.FunctionList(allow_none=True)
    function_call = tool_fields.ToolChoice(legacy=True)
    parallel_tool_calls = Bool(allow_none=True)
    response_format = ResponseFormat(allow_none=True)
    logprobs = Bool(allow_none=True)
    top_logprobs = Int(allow_none=True, validate=validate.Range(min=0, max=MAX_TOP_LOGPROBS))
    modalities = Refused(
        "'modalities' can only be [\"text\"]: the workers produce text only.", inert=(["text"],),
        code="unsupported_value",
    )
    audio = Refused("'audio' is not supported: only text output is supported.")
    web_search_options = Refused("'web_search_options' is not supported: no web search here.")
    prediction = _ignored("prediction", "FastChat workers do not use predicted outputs",
                          changes_answer=False)
    reasoning_effort = _ignored("reasoning_effort", "FastChat workers take no reasoning effort")
    verbosity = _ignored("verbosity", "FastChat workers take no verbosity")
    store = _ignored("store", "nothing is stored here", changes_answer=False, inert=(False,))
    metadata = _ignored("metadata", "nothing is stored here", changes_answer=False)
    service_tier = _ignored("service_tier", "this server has one tier", changes_answer=False,
                            inert=("auto", "default"))
    prompt_cache_key = _ignored("prompt_cache_key", "FastChat workers keep no prompt cache",
                                changes_answer=False)
    safety_identifier = _ignored("safety_identifier", "there is no safety monitoring here",
                                 changes_answer=False)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        """Tools first (``tools.request.tools_of``), then the body as every schema builds it."""
        if not _TOOL_KEYS.isdisjoint(data) or type(data.get("messages")) is protocol.History:
            data["tools"] = tool_fields.tools_of(data)
        return super()._build(data, **kwargs)


CHAT_COMPLETION = ChatCompletionSchema()


class APIChatCompletionSchema(ChatCompletionSchema):
    """FastChat's ``/api/v1/chat/completions``: ``repetition_penalty`` always sent (1.0)."""

    target = protocol.APIChatRequest


class CompletionSchema(SamplingSchema):
    target = protocol.CompletionRequest

    prompt = TextInputs(required=True)
    suffix = _ignored("suffix", "FastChat workers generate only after the prompt (no "
                      "fill-in-the-middle); put all the text in the prompt")
    echo = Bool(allow_none=True)
    logprobs = Int(allow_none=True, validate=validate.Range(min=0))
    best_of = Int(allow_none=True, validate=validate.Range(min=1, max=MAX_N))
    use_beam_search = Bool(allow_none=True)

    @validates_schema
    def _choices(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Every prompt gets ``n`` choices, each a generation of its own."""
        prompts, n = len(data["prompt"]), data.get("n") or 1
        if prompts * n > MAX_ITEMS:
            raise ValidationError(
                f"{prompts} prompts with n={n} ask for {prompts * n} completions, more than the "
                f"{MAX_ITEMS} allowed in one request.", "n",
            )


class EmbeddingsSchema(_Body):
    target = protocol.EmbeddingsRequest

    model = Str(allow_none=True, validate=_check_name)
    engine = Str(allow_none=True, validate=_check_name)
    input = TextInputs(required=True)
    user = Str(allow_none=True, validate=_check_name)
    encoding_format = Str(allow_none=True, validate=validate.OneOf(["float", "base64"]))
    dimensions = Refused(
        "dimensions is not supported: FastChat workers return the model's full embedding."
    )


class TokenCheckItemSchema(_Body):
    target = protocol.TokenCheckItem

    model = Str(required=True, validate=_check_name)
    prompt = Str(required=True, validate=_check_text)
    max_tokens = Int(required=True)


class TokenCheckSchema(_Body):
    target = protocol.TokenCheckRequest

    prompts = fields.List(fields.Nested(TokenCheckItemSchema), required=True, validate=_check_items)


API_CHAT_COMPLETION = APIChatCompletionSchema()
COMPLETION = CompletionSchema()
EMBEDDINGS = EmbeddingsSchema()
TOKEN_CHECK = TokenCheckSchema()

# The names the ignored-fields metric counts one by one.
KNOWN_FIELDS = KNOWN_EXTRAS.union(*(schema.load_fields for schema in (
    CHAT_COMPLETION, COMPLETION, EMBEDDINGS, TOKEN_CHECK)))


B = TypeVar("B")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BodyHandler = Callable[[web.Request, B], Awaitable[web.StreamResponse]]
_REQUEST_SCHEMA = "__request_schema__"


def _note_ignored(request: web.Request, names: list[str]) -> None:
    """Ignored fields go on the request's record (for the header and the access log) and to
    the metric, unknown names beyond :data:`KNOWN_FIELDS` counted as one."""
    record_of(request).ignored = tuple(names)
    metrics.ignored_params(name if name in KNOWN_FIELDS else metrics.OTHER for name in names)


def accepts(schema: Schema) -> Callable[[BodyHandler[Any]], Handler]:
    """Route metadata, declared: the handler is called with the body ``schema`` loaded in the
    app's mode (``compat.strict``; a 4xx naming the fields otherwise), the ignored fields
    noted, and ``/openapi.json`` documents ``schema`` as the route's request body
    (``bodies.json_body`` counts the body's bytes until the handler returns). Put it under the
    route decorator."""

    def decorate(handler: BodyHandler[Any]) -> Handler:
        @functools.wraps(handler)
        async def handle(request: web.Request) -> web.StreamResponse:
            async with bodies.json_body(request) as data:
                body = load(schema, data, strict=request.app[config_key].compat.strict)
                ignored = ignored_fields(schema, data)
                if ignored:
                    _note_ignored(request, ignored)
                return await handler(request, body)

        setattr(handle, _REQUEST_SCHEMA, schema)
        return handle

    return decorate


def request_schema(handler: Any) -> Schema | None:
    """The request body schema a handler declared with :func:`accepts`, if any."""
    schema = getattr(handler, _REQUEST_SCHEMA, None)
    return schema if isinstance(schema, Schema) else None
