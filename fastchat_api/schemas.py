"""Request schemas: FastChat's protocol, checked once at the door with marshmallow.

Instances are built once at import (a schema per request costs three times as much), and a
failure is reported as a 400 whose ``param`` is the path of the first bad field.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Awaitable, Callable, Mapping, Sized, TypeVar

from aiohttp import web
from marshmallow import (
    EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema,
)

from . import bodies, errors, protocol
from .fastchat_rules import NO_LIMIT as MAX_TOKENS  # max_tokens, before the clamp to the context

# What one request may ask for. Past these a request costs the workers or this process far more
# than any client plausibly needs; where OpenAI sets a limit, it is OpenAI's.
MAX_ITEMS = 2048  # messages, content parts, prompts, embedding inputs, token checks
MAX_TEXT = 10 * 1024 * 1024  # characters of one message content, prompt or input
MAX_NAME = 1024  # characters of a model name, role, user and each stop string
MAX_STOPS = 64  # stop strings (OpenAI takes 4): workers look for every one after every token
MAX_N = 128  # n and best_of; a completion's prompts times n is at most MAX_ITEMS


def _at_most(limit: int, unit: str) -> Callable[[Sized], None]:
    """A validator refusing more than ``limit`` characters or items, with the count said."""

    def check(value: Sized) -> None:
        if len(value) > limit:
            raise ValidationError(f"{len(value)} {unit}, more than the {limit} allowed.")

    return check


_check_items = _at_most(MAX_ITEMS, "items")
_check_text = _at_most(MAX_TEXT, "characters")
_check_name = _at_most(MAX_NAME, "characters")
_check_stops = _at_most(MAX_STOPS, "stop strings")


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


_UNKNOWN = "Unknown field."


def validation_error(exc: ValidationError, schema: Schema | None = None) -> errors.APIError:
    """A 400 (FastChat's 40001) naming the first offending parameter.

    As OpenAI does, a parameter nobody defined is refused by name rather than ignored, and a
    defined one the workers cannot honour says so (``code: unsupported_parameter``).
    """
    param, reason = _path(exc.messages)
    if not param:
        return errors.invalid_request(reason)
    if reason == _UNKNOWN:
        return errors.invalid_request(
            f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter"
        )
    field = schema.fields.get(param) if schema is not None else None
    if isinstance(field, Unsupported):
        return errors.invalid_request(reason, param=param, code="unsupported_parameter")
    return errors.invalid_request(f"Invalid value for '{param}': {reason}", param=param)


def load(schema: Schema, data: Mapping[str, Any]) -> Any:
    """Validate ``data`` with a prebuilt schema: the typed body of ``protocol``, or the
    gateway's 400 naming the first bad field."""
    try:
        return _sparse(schema, data).load(data)
    except ValidationError as exc:
        raise validation_error(exc, schema) from None


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


class Int(fields.Integer):
    """An integer; ``5.0`` is taken as 5, while ``5.5``, ``"5"`` and ``true`` are refused, and
    so is one past 64 bits, which workers cannot read (nor the gateway send: orjson refuses)."""

    default_error_messages = {
        "invalid": "Not a valid integer.",
        "too_large": "Must fit in 64 bits (between -2**63 and 2**63 - 1).",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if not -(2**63) <= number < 2**63:
            raise self.make_error("too_large")
        return number


class Stop(fields.Field[str | list[str]]):
    """``stop``: a string or a list of strings."""

    default_error_messages = {"invalid": "Must be a string or a list of strings."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str | list[str]:
        if isinstance(value, str):
            _check_name(value)
            return value
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            _check_stops(value)
            for item in value:
                _check_name(item)
            return value
        raise self.make_error("invalid")


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

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            _check_text(value)
            return [value]
        if not isinstance(value, list) or not value:
            raise self.make_error("invalid")
        if all(isinstance(item, str) for item in value):
            _check_items(value)
            for item in value:
                _check_text(item)
            return value
        if all(type(item) is int or isinstance(item, list) for item in value):
            raise self.make_error("tokens")
        raise self.make_error("invalid")


class Unsupported(fields.Field[None]):
    """An OpenAI parameter FastChat workers cannot honour: refused, never silently dropped.

    Absent, null, or one of the ``inert`` values that ask for nothing (``tools: []``,
    ``response_format: {"type": "text"}``) is accepted and loads as None; anything else is a 400
    whose message is ``reason``.
    """

    def __init__(self, reason: str, inert: tuple[Any, ...] = (), **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)
        self.reason = reason
        self.inert = inert

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> None:
        if any(value == harmless for harmless in self.inert):
            return None
        raise ValidationError(self.reason)


class Accepted(fields.Raw):
    """An OpenAI parameter with no effect on generation here (metadata, cache hints, ...):
    accepted as OpenAI accepts it, and not forwarded."""


def _no_tools(name: str) -> Unsupported:
    return Unsupported(
        f"'{name}' is not supported: FastChat workers have no tool or function calling, so the "
        "model cannot honour it. Remove it, or describe the tools in the messages.",
        inert=([], "none"),
    )


_JSON_MODE = (
    "'response_format' {type} is not supported: FastChat workers cannot constrain the output to "
    "JSON or a schema. Use {{\"type\": \"text\"}} or leave it out."
)


class ResponseFormat(Unsupported):
    """``response_format``: only ``{"type": "text"}`` can be honoured."""

    def __init__(self) -> None:
        super().__init__("", inert=({"type": "text"},))

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> None:
        self.reason = _JSON_MODE.format(type=repr(value.get("type")) if isinstance(value, dict) else "")
        return super()._deserialize(value, attr, data, **kwargs)


def _content_part(part: Any) -> None:
    """One part of a message's content list: text or image_url, as OpenAI defines them."""
    if not isinstance(part, dict):
        raise ValidationError("Must be an object.")
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise ValidationError({"text": ["Must be a string."]})
        _checked(_check_text, part["text"], "text")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url:
            raise ValidationError({"image_url": {"url": ["Must be a non-empty string."]}})
        _checked(_check_text, url, "image_url", "url")
    else:
        raise ValidationError({"type": [f"Unknown content part type {kind!r}; use 'text' or 'image_url'."]})


def _message(message: Any) -> None:
    """One chat message: a role and a content that is a string, a list of parts, or null."""
    if not isinstance(message, dict):
        raise ValidationError("Must be an object with 'role' and 'content'.")
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise ValidationError({"role": ["Missing or not a string."]})
    _checked(_check_name, role, "role")
    content = message.get("content")
    if content is None:
        if role != "assistant":
            raise ValidationError({"content": ["Must be a string or a list of content parts."]})
    elif isinstance(content, list):
        _checked(_check_items, content, "content")
        for index, part in enumerate(content):
            try:
                _content_part(part)
            except ValidationError as exc:
                raise ValidationError({"content": {index: exc.messages}}) from None
    elif isinstance(content, str):
        _checked(_check_text, content, "content")
    else:
        raise ValidationError({"content": ["Must be a string or a list of content parts."]})


def _checked(check: Callable[[Any], None], value: Any, *path: str) -> None:
    """``check(value)``, its error reported under the keys of ``path``."""
    try:
        check(value)
    except ValidationError as exc:
        messages = exc.messages
        for key in reversed(path):
            messages = {key: messages}
        raise ValidationError(messages) from None


class Messages(fields.Field[protocol.Messages]):
    """``messages``: a list of chat messages, or (FastChat's extension) a ready prompt string."""

    default_error_messages = {
        "invalid": "Must be a non-empty list of messages or a string.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> protocol.Messages:
        if isinstance(value, str):
            _check_text(value)
            return value
        if not isinstance(value, list) or not value:
            raise self.make_error("invalid")
        _check_items(value)
        for index, message in enumerate(value):
            try:
                _message(message)
            except ValidationError as exc:
                raise ValidationError({index: exc.messages}) from None
        return value


class StreamOptions(Schema):
    class Meta:
        unknown = EXCLUDE

    include_usage = fields.Boolean(load_default=False)


@functools.cache
def _field_names(target: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(target))


class _Body(Schema):
    """A request body: unknown fields refused by name; loads into ``target``, where a field
    left out or sent as null takes the target's (FastChat's) default."""

    target: type

    class Meta:
        unknown = RAISE

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        options = data.pop("stream_options", None)
        if options is not None:
            data["include_usage"] = options["include_usage"]
        wanted = _field_names(self.target)
        return self.target(**{k: v for k, v in data.items() if k in wanted and v is not None})


class SamplingSchema(_Body):
    """Fields every generation route shares.

    Every field OpenAI or FastChat defines is declared: honoured, accepted as inert, or refused
    with a reason; any other field is refused by name.
    """

    model = fields.String(required=True, validate=_check_name)
    temperature = fields.Float(allow_none=True)
    top_p = fields.Float(allow_none=True)
    top_k = Int(allow_none=True)
    n = Int(allow_none=True, validate=validate.Range(max=MAX_N))
    max_tokens = Int(allow_none=True, validate=validate.Range(max=MAX_TOKENS))
    stop = Stop(allow_none=True)
    stream = fields.Boolean(allow_none=True)
    stream_options = fields.Nested(StreamOptions, allow_none=True)
    presence_penalty = fields.Float(allow_none=True)
    frequency_penalty = fields.Float(allow_none=True)
    repetition_penalty = fields.Float(allow_none=True)
    user = fields.String(allow_none=True, validate=_check_name)
    seed = Unsupported(
        "'seed' is not supported: FastChat workers sample with a process-wide seed, so a "
        "per-request seed cannot be honoured. Leave it out (or null)."
    )
    logit_bias = Unsupported(
        "'logit_bias' is not supported by FastChat workers. Leave it out (or {}).", inert=({},)
    )
    metadata = Accepted(allow_none=True)
    store = Unsupported("'store' is not supported: nothing is stored here.", inert=(False,))
    service_tier = Unsupported(
        "'service_tier' is not supported: this server has one tier.", inert=("auto", "default")
    )


class ChatCompletionSchema(SamplingSchema):
    target = protocol.ChatRequest
    messages = Messages(required=True)
    max_completion_tokens = Int(allow_none=True, validate=validate.Range(max=MAX_TOKENS))
    tools = _no_tools("tools")
    tool_choice = _no_tools("tool_choice")
    functions = _no_tools("functions")
    function_call = _no_tools("function_call")
    parallel_tool_calls = Accepted(allow_none=True)
    response_format = ResponseFormat()
    logprobs = Unsupported(
        "'logprobs' is not supported on chat: FastChat workers return log-probabilities only "
        "for /v1/completions.", inert=(False,)
    )
    top_logprobs = Unsupported(
        "'top_logprobs' is not supported: FastChat workers return no alternatives.", inert=(0,)
    )
    modalities = Unsupported(
        "'modalities' can only be [\"text\"]: the workers produce text only.", inert=(["text"],)
    )
    audio = Unsupported("'audio' is not supported: only text output is supported.")
    prediction = Unsupported("'prediction' is not supported by FastChat workers.")
    reasoning_effort = Unsupported("'reasoning_effort' is not supported by FastChat workers.")
    verbosity = Unsupported("'verbosity' is not supported by FastChat workers.")
    web_search_options = Unsupported("'web_search_options' is not supported: no web search here.")
    prompt_cache_key = Accepted(allow_none=True)
    safety_identifier = Accepted(allow_none=True)


CHAT_COMPLETION = ChatCompletionSchema()


class APIChatCompletionSchema(ChatCompletionSchema):
    """FastChat's ``/api/v1/chat/completions``: ``repetition_penalty`` always sent (1.0)."""

    target = protocol.APIChatRequest


class CompletionSchema(SamplingSchema):
    target = protocol.CompletionRequest

    prompt = TextInputs(required=True)
    suffix = Unsupported(
        "suffix is not supported: FastChat workers generate only after the prompt (no "
        "fill-in-the-middle). Put all the text in the prompt."
    )
    echo = fields.Boolean(allow_none=True)
    logprobs = Int(allow_none=True, validate=validate.Range(min=0))
    best_of = Int(allow_none=True, validate=validate.Range(min=1, max=MAX_N))
    use_beam_search = fields.Boolean(allow_none=True)

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

    model = fields.String(allow_none=True, validate=_check_name)
    engine = fields.String(allow_none=True, validate=_check_name)
    input = TextInputs(required=True)
    user = fields.String(allow_none=True, validate=_check_name)
    encoding_format = fields.String(allow_none=True, validate=validate.OneOf(["float", "base64"]))
    dimensions = Unsupported(
        "dimensions is not supported: FastChat workers return the model's full embedding."
    )


class TokenCheckItemSchema(_Body):
    target = protocol.TokenCheckItem

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=_check_name)
    prompt = fields.String(required=True, validate=_check_text)
    max_tokens = Int(required=True)


class TokenCheckSchema(_Body):
    target = protocol.TokenCheckRequest

    class Meta:
        unknown = EXCLUDE

    prompts = fields.List(fields.Nested(TokenCheckItemSchema), required=True, validate=_check_items)


API_CHAT_COMPLETION = APIChatCompletionSchema()
COMPLETION = CompletionSchema()
EMBEDDINGS = EmbeddingsSchema()
TOKEN_CHECK = TokenCheckSchema()


B = TypeVar("B")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BodyHandler = Callable[[web.Request, B], Awaitable[web.StreamResponse]]
_REQUEST_SCHEMA = "__request_schema__"


def accepts(schema: Schema) -> Callable[[BodyHandler[Any]], Handler]:
    """Route metadata, declared: the handler is called with the body ``schema`` loaded (a 4xx
    naming the field otherwise; ``bodies.json_body`` counts the body's bytes until the handler
    returns), and ``/openapi.json`` documents ``schema`` as the route's request body. Put it
    under the route decorator."""

    def decorate(handler: BodyHandler[Any]) -> Handler:
        @functools.wraps(handler)
        async def handle(request: web.Request) -> web.StreamResponse:
            async with bodies.json_body(request) as body:
                return await handler(request, load(schema, body))

        setattr(handle, _REQUEST_SCHEMA, schema)
        return handle

    return decorate


def request_schema(handler: Any) -> Schema | None:
    """The request body schema a handler declared with :func:`accepts`, if any."""
    schema = getattr(handler, _REQUEST_SCHEMA, None)
    return schema if isinstance(schema, Schema) else None
