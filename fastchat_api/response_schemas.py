"""What each route answers, declared as marshmallow schemas for ``/openapi.json``.

``responses.py`` shapes the bodies; these schemas describe them (OpenAI's objects, with
FastChat's extra fields where the gateway sends them), and a handler declares its own with
:func:`returns`: a JSON body, and for streaming routes the ``data:`` of each server-sent event.
The unit tests hold the answers to these schemas (schemathesis' response conformance).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from marshmallow import Schema, fields, validate

from .responses import FINISH_REASONS

H = TypeVar("H", bound=Callable[..., Any])
_RESPONSE_SCHEMAS = "__response_schemas__"


def _const(value: str) -> fields.String:
    return fields.String(required=True, validate=validate.OneOf([value]))


def _finish(*, nullable: bool) -> fields.String:
    reasons = sorted(FINISH_REASONS)
    return fields.String(required=True, allow_none=nullable,
                         validate=validate.OneOf([*reasons, None] if nullable else reasons))


class UsageSchema(Schema):
    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)


class AssistantMessageSchema(Schema):
    role = _const("assistant")
    content = fields.String(required=True, allow_none=True)
    refusal = fields.Raw(required=True, metadata={"type": "null"})


class TopLogprobSchema(Schema):
    token = fields.String(required=True)
    logprob = fields.Float(required=True)
    bytes = fields.List(fields.Integer(), required=True, allow_none=True)


class TokenLogprobSchema(TopLogprobSchema):
    """One token of a chat answer: the text it accounts for in the content, its UTF-8 bytes,
    its log-probability and the alternatives the worker gave (often none)."""

    top_logprobs = fields.List(fields.Nested(TopLogprobSchema), required=True)


class ChatLogprobsSchema(Schema):
    """OpenAI's chat log-probabilities (``logprobs: true``); null without them, or when the
    worker gave none (``X-Logprobs: unavailable``)."""

    content = fields.List(fields.Nested(TokenLogprobSchema), required=True, allow_none=True)
    refusal = fields.Raw(required=True, metadata={"type": "null"})


class ChatChoiceSchema(Schema):
    index = fields.Integer(required=True)
    message = fields.Nested(AssistantMessageSchema, required=True)
    logprobs = fields.Nested(ChatLogprobsSchema, required=True, allow_none=True)
    finish_reason = _finish(nullable=False)


class _Answer(Schema):
    """The fields every completion answer and chunk starts with."""

    id = fields.String(required=True)
    created = fields.Integer(required=True, metadata={"description": "Unix time, seconds"})
    model = fields.String(required=True)


class ChatCompletionResponseSchema(_Answer):
    """``chat.completion``: choice ``i`` is the ``i``-th of ``n`` generations."""

    object = _const("chat.completion")
    system_fingerprint = fields.String(required=True)
    choices = fields.List(fields.Nested(ChatChoiceSchema), required=True)
    usage = fields.Nested(UsageSchema, required=True)


class DeltaSchema(Schema):
    role = fields.String(validate=validate.OneOf(["assistant"]))
    content = fields.String()


class ChatChunkChoiceSchema(Schema):
    index = fields.Integer(required=True)
    delta = fields.Nested(DeltaSchema, required=True)
    logprobs = fields.Nested(ChatLogprobsSchema, required=True, allow_none=True)
    finish_reason = _finish(nullable=True)


class ChatCompletionChunkSchema(_Answer):
    """``chat.completion.chunk``: one choice's new text; with ``include_usage``, a last chunk
    with no choices and the usage (``usage`` is null before it)."""

    object = _const("chat.completion.chunk")
    system_fingerprint = fields.String(required=True)
    choices = fields.List(fields.Nested(ChatChunkChoiceSchema), required=True)
    usage = fields.Nested(UsageSchema, allow_none=True)


class LogprobsSchema(Schema):
    """OpenAI's completions log-probabilities, one entry per token."""

    tokens = fields.List(fields.String(), required=True)
    token_logprobs = fields.List(fields.Float(allow_none=True), required=True)
    top_logprobs = fields.List(fields.Dict(keys=fields.String(), values=fields.Float(), allow_none=True),
                               required=True)
    text_offset = fields.List(fields.Integer(), required=True)


class TextChoiceSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "prompt number × n + choice"})
    text = fields.String(required=True)
    logprobs = fields.Nested(LogprobsSchema, required=True, allow_none=True)
    finish_reason = _finish(nullable=False)


class TextCompletionSchema(_Answer):
    """``text_completion``: ``n`` choices for each prompt."""

    object = _const("text_completion")
    choices = fields.List(fields.Nested(TextChoiceSchema), required=True)
    usage = fields.Nested(UsageSchema, required=True)


class TextChunkChoiceSchema(TextChoiceSchema):
    finish_reason = _finish(nullable=True)


class TextCompletionChunkSchema(_Answer):
    """A streamed ``text_completion``: one choice's new text and the log-probabilities of its
    tokens; with ``include_usage``, a last chunk with no choices and the usage."""

    object = _const("text_completion")
    choices = fields.List(fields.Nested(TextChunkChoiceSchema), required=True)
    usage = fields.Nested(UsageSchema, allow_none=True)


class StreamErrorDetailSchema(Schema):
    message = fields.String(required=True)
    type = fields.String(required=True)
    param = fields.String(required=True, allow_none=True)
    code = fields.String(required=True, allow_none=True)
    fastchat_code = fields.Integer(required=True, metadata={"description": "FastChat's numeric error code"})


class StreamErrorSchema(Schema):
    """An error after a stream started (its status is already 200); ``[DONE]`` follows."""

    error = fields.Nested(StreamErrorDetailSchema, required=True)


class EmbeddingSchema(Schema):
    object = _const("embedding")
    embedding = fields.Raw(required=True, metadata={"anyOf": [
        {"type": "array", "items": {"type": "number"}},
        {"type": "string", "description": "base64 of little-endian float32"}]})
    index = fields.Integer(required=True)


class EmbeddingUsageSchema(Schema):
    prompt_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)


class EmbeddingListSchema(Schema):
    """One vector per input, in input order."""

    object = _const("list")
    data = fields.List(fields.Nested(EmbeddingSchema), required=True)
    model = fields.String(required=True)
    usage = fields.Nested(EmbeddingUsageSchema, required=True)


class ModelPermissionSchema(Schema):
    id = fields.String(required=True)
    object = _const("model_permission")
    created = fields.Integer(required=True)
    allow_create_engine = fields.Boolean(required=True)
    allow_sampling = fields.Boolean(required=True)
    allow_logprobs = fields.Boolean(required=True)
    allow_search_indices = fields.Boolean(required=True)
    allow_view = fields.Boolean(required=True)
    allow_fine_tuning = fields.Boolean(required=True)
    organization = fields.String(required=True)
    group = fields.String(required=True, allow_none=True)
    is_blocking = fields.Boolean(required=True)


class ModelSchema(Schema):
    """OpenAI's model object, with FastChat's ``root``, ``parent`` and ``permission``."""

    id = fields.String(required=True)
    object = _const("model")
    created = fields.Integer(required=True)
    owned_by = fields.String(required=True)
    root = fields.String(required=True)
    parent = fields.String(required=True, allow_none=True)
    permission = fields.List(fields.Nested(ModelPermissionSchema), required=True)


class ModelListSchema(Schema):
    object = _const("list")
    data = fields.List(fields.Nested(ModelSchema), required=True)


class TokenCheckResultSchema(Schema):
    fits = fields.Boolean(required=True)
    tokenCount = fields.Integer(required=True)
    contextLength = fields.Integer(required=True)


class TokenCheckResponseSchema(Schema):
    """FastChat's answer, one result per prompt, in order."""

    prompts = fields.List(fields.Nested(TokenCheckResultSchema), required=True)


class HealthSchema(Schema):
    status = _const("ok")


class ReadySchema(Schema):
    status = _const("ready")
    models = fields.List(fields.String(), required=True)


def returns(body: type[Schema] | None = None, *, events: type[Schema] | None = None,
            media_type: str | None = None) -> Callable[[H], H]:
    """Route metadata for ``/openapi.json``: the 200 answer is ``body`` as JSON, or (when the
    request asks for a stream) server-sent events whose ``data`` is an ``events`` object, or a
    document of ``media_type``."""

    def declare(handler: H) -> H:
        setattr(handler, _RESPONSE_SCHEMAS, (body, events, media_type))
        return handler

    return declare


def response_schemas(handler: Any) -> tuple[type[Schema] | None, type[Schema] | None, str | None]:
    """What a handler declared with :func:`returns`: (JSON body, event data, other media type)."""
    return getattr(handler, _RESPONSE_SCHEMAS, (None, None, None))
