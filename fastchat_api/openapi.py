"""The OpenAPI 3.1 document of the running app, built from its router and marshmallow schemas.

Paths come from the app's router, so a new route is listed without anyone remembering to. A
handler's request body is the schema it declares with ``@schemas.accepts(...)``; its docstring
is the operation's text (the first paragraph its summary). A body field's default is the one
its typed body (``protocol``) takes; its description is written here for the API's users. The
operations are grouped by route module under the tags of ``TAGS``, and each lists the errors
it can answer with. The document is built once, when the app starts and its router is frozen.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields, validate
from marshmallow.experimental.context import Context

from . import __version__, schemas
from .tools import request as tool_fields
from .response_schemas import StreamErrorSchema, response_schemas
from .jsonutil import dumps
from .routes import slash_form
from .typedefs import config_key, keys_key, openapi_key

_SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})  # automatic HEADs and CORS preflights
_PATH_PARAM = re.compile(r"{(\w+)}")


class ErrorDetailSchema(Schema):
    message = fields.String(required=True)
    type = fields.String(required=True)
    param = fields.String(allow_none=True, required=True)
    code = fields.String(allow_none=True, required=True)


class ErrorSchema(Schema):
    """Every error body: OpenAI's ``error`` object, and FastChat's flat fields beside it."""

    object = fields.String(required=True, validate=validate.OneOf(["error"]))
    message = fields.String(required=True)
    code = fields.Integer(required=True, metadata={"description": "FastChat's numeric error code"})
    error = fields.Nested(ErrorDetailSchema, required=True)


ERROR_SCHEMA = ErrorSchema()

DESCRIPTION = (
    "OpenAI-compatible API server for FastChat controllers and workers.\n\n"
    "When the server has API keys, send one as `Authorization: Bearer <key>`. Every error is "
    "JSON: OpenAI's `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`, with "
    "FastChat's `object`, `message` and numeric `code` beside it. Once a stream has begun, an "
    "error arrives as a last `data: {\"error\": ...}` event before `data: [DONE]`."
)

# The groups of operations, in the order /docs shows them: the OpenAI API, FastChat's own
# routes, then the routes for operating the server.
TAGS = (
    {"name": "Chat", "description": "Chat completions: the model's answer to a conversation, "
     "whole or streamed as server-sent events."},
    {"name": "Completions", "description": "Text completions: the model continues a prompt, "
     "whole or streamed as server-sent events."},
    {"name": "Embeddings", "description": "Embedding vectors of texts."},
    {"name": "Models", "description": "The models the FastChat workers serve."},
    {"name": "FastChat", "description": "FastChat's own routes beside the OpenAI ones."},
    {"name": "Operations", "description": "For load balancers, orchestrators, monitors and "
     "people: no API key needed."},
)
_TAG_OF_MODULE = {
    "chat": "Chat", "completions": "Completions", "embeddings": "Embeddings", "models": "Models",
    "api_v1": "FastChat", "health": "Operations", "metrics": "Operations", "docs": "Operations",
}

# What each honoured body field does, for the people who send it (defaults are added from the
# typed bodies; fields that are accepted without effect, or refused, say so themselves).
FIELD_NOTES = {
    "model": "The model to use, one of those GET /v1/models lists.",
    "messages": "The conversation so far: messages with a `role` (`system`, `developer`, `user`, "
    "`assistant`; with tool history `tool`, with its `tool_call_id`, or the legacy `function`) "
    "and a `content` (a string, or a list of `text` and `image_url` parts), "
    "rendered into a prompt with the model's conversation template. A string is used as the "
    "prompt itself, without the template (FastChat's extension).",
    "prompt": "The text to continue, used as it is (no conversation template); or a list of "
    "texts, each completed `n` times.",
    "input": "The text to embed, or a list of texts: one vector each, in the same order.",
    "temperature": "Sampling temperature, 0 to 2: higher makes the output more random, 0 picks "
    "the most likely token every time.",
    "top_p": "Nucleus sampling, 0 to 1: only the most likely tokens whose probabilities add up "
    "to `top_p` are drawn from.",
    "top_k": "Only the `top_k` most likely tokens are drawn from; -1 for all of them.",
    "n": "How many answers (choices) to generate; they are generated concurrently.",
    "max_tokens": "The most tokens to generate, and at most the room the prompt leaves in the "
    "model's context (all of that room when not given, on chat).",
    "max_completion_tokens": "OpenAI's newer name for `max_tokens`; used when both are given.",
    "stop": "A string, or a list of up to 64, at which generation stops; the string itself is "
    "not returned. The model's conversation template may add its own.",
    "stream": "Send the answer as server-sent events as it is generated, ending with "
    "`data: [DONE]`.",
    "stream_options": "Options of a stream (`stream: true`):",
    "include_usage": "Add a last chunk with the token usage of the whole stream.",
    "presence_penalty": "Penalises tokens already in the text, -2 to 2; passed to the worker "
    "(vLLM workers apply it, FastChat's Hugging Face worker does not).",
    "frequency_penalty": "Penalises tokens by how often they are already in the text, -2 to 2; "
    "passed to the worker (vLLM workers apply it, FastChat's Hugging Face worker does not).",
    "repetition_penalty": "Penalises repeated tokens (1 for none); FastChat's Hugging Face "
    "worker applies it.",
    "echo": "Return the prompt before the completion, and its tokens in `logprobs`.",
    "logprobs": "Return the log-probability of each token: on completions a number (of "
    "alternatives), on chat `true`. FastChat's Hugging Face worker gives the chosen token's "
    "only, whatever the number asked for; a chat answer then says so in `X-Top-Logprobs` "
    "(and a worker that gives none in `X-Logprobs: unavailable`).",
    "top_logprobs": "With `logprobs: true`, how many of the likeliest alternatives (0 to 20) to "
    "return beside each token, as far as the worker gives them (`X-Top-Logprobs` says how many "
    "it gave when fewer).",
    "best_of": "How many candidates the worker generates to return the best; whole answers "
    "only, not streams (vLLM workers use it).",
    "use_beam_search": "Beam search instead of sampling; whole answers only, not streams (vLLM "
    "workers use it).",
    "encoding_format": "`float` (the default): lists of numbers; `base64`: little-endian "
    "float32, base64-encoded.",
    "user": "An identifier of the end user, written to the access log (its `user` field).",
    "prompts": "The prompts to check, each with its model and the tokens it must leave room for.",
    "response_format": "`{\"type\": \"json_object\"}` for a JSON object, or `{\"type\": "
    "\"json_schema\", \"json_schema\": {\"name\", \"schema\", \"strict\"}}` for JSON valid against "
    "the schema: the gateway asks the model, checks the answer and generates it again when it "
    "does not conform; a whole answer that never does is a 502 `invalid_model_output`, a "
    "stream ends with that error event. `{\"type\": \"text\"}` (the default): free text.",
    "tools": "Functions the model may call (`{\"type\": \"function\", \"function\": {\"name\", "
    "\"description\", \"parameters\", \"strict\"}}`): written into the prompt in the model's tool "
    "format, the calls read back as `message.tool_calls` with `finish_reason: \"tool_calls\"`; "
    "arguments are validated against `parameters` (README: Tool calling).",
    "tool_choice": "`auto` (the default with tools): the model decides; `none`: no call; "
    "`required`, or `{\"type\": \"function\", \"function\": {\"name\": ...}}`: the answer is "
    "a call (of that function), generated again until usable, else a 502 `invalid_model_output`.",
    "parallel_tool_calls": "`false`: at most one call per answer.",
    "functions": "The legacy form of `tools`: answered with `message.function_call` and "
    "`finish_reason: \"function_call\"`.",
    "function_call": "The legacy form of `tool_choice`: `none`, `auto` or `{\"name\": ...}`.",
    # A field of one body only, under its typed body's name.
    "TokenCheckItem.prompt": "The prompt, as the model would read it.",
    "TokenCheckItem.max_tokens": "The tokens to generate after the prompt: whether they fit.",
}
_NO_EFFECT = "Accepted for compatibility with OpenAI's API; it has no effect here."
_PATH_NOTES = {
    "model": "The model's id, as GET /v1/models lists it (it may contain slashes).",
    "model_name": "The model to use when the body names none.",
}


# A body field the typed body keeps under another name (schemas._Body loads it so).
_LOADED_AS = {"stream_options": "include_usage", "tool_choice": "tools", "parallel_tool_calls": "tools",
              "functions": "tools", "function_call": "tools"}


def _describe_field(self: Any, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: what a body field means to the client, its default (the
    typed body's, FastChat's), and whether it is honoured: ``x-support`` is ``refused`` for a
    field refused unless it asks for nothing, ``ignored`` for one the typed body does not keep."""
    name = field.name or ""
    target = getattr(getattr(field, "parent", None), "target", None)
    kept = {item.name: item.default for item in dataclasses.fields(target)} if target else {}
    described: dict[str, Any] = {}
    if isinstance(field, schemas.Refused):
        reason = " ".join(field.reason.split()) or FIELD_NOTES[name]
        support = "ignored" if isinstance(field, schemas.Ignored) else "refused"
        described = {"description": reason, "x-support": support}
    elif target and _LOADED_AS.get(name, name) not in kept:
        described = {"description": _NO_EFFECT, "x-support": "ignored"}
    else:
        note = FIELD_NOTES.get(f"{getattr(target, '__name__', '')}.{name}") or FIELD_NOTES.get(name)
        described = {"description": note} if note else {}
    if kept.get(name) not in (None, dataclasses.MISSING):
        described["default"] = kept[name]
    return described


# The errors an operation can answer with, each in the error format (see ErrorSchema).
_ERRORS = {
    "400": "The body is not JSON, or a field is missing, of the wrong type or out of range "
    "(`error.param` names it), or the prompt leaves no room in the model's context.",
    "401": "The API key is missing or wrong: send `Authorization: Bearer <key>`.",
    "404": "No worker serves this model (`error.code`: `model_not_found`).",
    "413": "The body is larger than the server accepts.",
    "415": "The body is not sent as `application/json`.",
    "502": "A worker or the controller failed, or answered with an error.",
    "503": "Nothing can take the request now: no worker serves the model yet, or the controller "
    "cannot be reached. Send it again after `Retry-After` seconds.",
    "504": "A worker or the controller did not answer in time.",
}
_METRICS_401 = "The metrics token is missing or wrong: send `Authorization: Bearer <metrics.token>`."
_NOT_READY = "Not ready: the controller cannot be reached or lists no model (the message says which)."


def _names_model(schema: Schema) -> bool:
    """Whether a body names a model, itself or in the items of a list."""
    nested = [field.inner if isinstance(field, fields.List) else field for field in schema.fields.values()]
    return "model" in schema.fields or any(
        isinstance(field, fields.Nested) and isinstance(field.schema, Schema) and _names_model(field.schema)
        for field in nested
    )


def _error(status: str, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    if status == "503":
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                               "schema": {"type": "integer"}}}
    return response


def _errors(tag: str, canonical: str, body: Schema | None, security: str | None) -> dict[str, Any]:
    """The error responses of one operation: from its body, its key check, the model it names
    and the workers it calls (every group but the operations routes)."""
    errors: dict[str, str] = {}
    if body is not None:
        errors |= {status: _ERRORS[status] for status in ("400", "413", "415")}
    if security is not None:
        errors["401"] = _ERRORS["401"] if security == "apiKey" else _METRICS_401
    if (body is not None and _names_model(body)) or "{model}" in canonical:
        errors["404"] = _ERRORS["404"]
    if tag != "Operations":
        errors |= {status: _ERRORS[status] for status in ("502", "503", "504")}
    if canonical == "/ready":
        errors["503"] = _NOT_READY
    return {status: _error(status, errors[status]) for status in sorted(errors)}


def _security(app: web.Application, canonical: str) -> str | None:
    """The security scheme a route is behind, if any."""
    keys = app[keys_key]
    if keys.enabled and canonical.startswith(keys.prefixes):
        return "apiKey"
    if canonical == "/metrics" and app[config_key].metrics.token is not None:
        return "metricsToken"
    return None


def _type_own_field(self: Any, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: the JSON types and limits our custom fields take, which
    apispec cannot know (a string or a list of strings, ...), as the fields declare them."""
    describe = getattr(field, "json_schema", None)
    own = type(field).__module__ in (schemas.__name__, tool_fields.__name__)
    return describe(ret) if callable(describe) and own else {}


def _ref(spec: APISpec, schema: type[Schema]) -> dict[str, str]:
    """A reference to ``schema``'s component, registered on first use."""
    name = schema.__name__.removesuffix("Schema")
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _events(spec: APISpec, chunk: type[Schema]) -> dict[str, Any]:
    """One server-sent event of a stream (what schemathesis and OpenAPI 3.2's ``itemSchema``
    read a stream's schema as): its ``data`` is a ``chunk`` as JSON, an error after the stream
    started, or ``[DONE]`` last."""
    data = {"type": "string", "contentMediaType": "application/json",
            "contentSchema": {"anyOf": [_ref(spec, chunk), _ref(spec, StreamErrorSchema)]}}
    return {"type": "object", "required": ["data"],
            "properties": {"data": {"anyOf": [{"const": "[DONE]"}, data]}}}


def _success(spec: APISpec, handler: Any) -> dict[str, Any]:
    """The 200 response a handler declared with ``response_schemas.returns``."""
    body, events, media_type = response_schemas(handler)
    content: dict[str, Any] = {}
    if body is not None:
        content["application/json"] = {"schema": body}
    if events is not None:
        content["text/event-stream"] = {"schema": _events(spec, events)}
    if media_type is not None:
        content[media_type] = {"schema": {"type": "object" if media_type.endswith("json") else "string"}}
    return {"description": "Success", **({"content": content} if content else {})}


def _operation(route: web.AbstractRoute, canonical: str, app: web.Application,
               spec: APISpec) -> dict[str, Any]:
    handler = route.handler
    doc = inspect.getdoc(handler) or handler.__name__.replace("_", " ").capitalize()
    summary, _, description = doc.partition("\n\n")
    tag = _TAG_OF_MODULE[handler.__module__.rpartition(".")[2]]
    body = schemas.request_schema(handler)
    security = _security(app, canonical)
    operation: dict[str, Any] = {
        "summary": " ".join(summary.split()),
        "tags": [tag],
        "responses": {"200": _success(spec, handler)} | _errors(tag, canonical, body, security),
    }
    if description:
        operation["description"] = description
    parameters = [
        {"name": name, "in": "path", "required": True, "description": _PATH_NOTES[name],
         "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(canonical)
    ]
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        if "stream" in body.fields:
            operation["responses"]["200"]["description"] = "JSON, or server-sent events with stream: true"
    if security:
        operation["security"] = [{security: []}]
    return operation


def build(app: web.Application) -> dict[str, Any]:
    """The document of every route of ``app`` (HEAD, CORS preflights and the trailing-slash
    forms aside)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="fastchat_api",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": DESCRIPTION},
    )
    assert plugin.converter is not None  # made by plugin.init_spec, which APISpec() called
    plugin.converter.add_attribute_function(_describe_field)
    plugin.converter.add_attribute_function(_type_own_field)
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("metricsToken", {"type": "http", "scheme": "bearer"})
    for tag in TAGS:
        spec.tag(tag)
    operations: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method in _SKIPPED_METHODS or route.resource is None:
            continue
        canonical = route.resource.canonical
        if slash_form(canonical):
            continue
        operations.setdefault(canonical, {})[route.method.lower()] = _operation(route, canonical, app, spec)
    strict = app[config_key].compat.strict
    with Context[bool](strict):  # fields describe what the app's mode accepts
        for path, methods in sorted(operations.items()):
            spec.path(path=path, operations=methods)
        document = spec.to_dict()
    if strict:
        _refuse_other_fields(document)
    return document


def _refuse_other_fields(document: dict[str, Any]) -> None:
    """Under ``compat.strict`` a request body's unknown fields are refused: say so."""
    for methods in document["paths"].values():
        for operation in methods.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                name = body["schema"]["$ref"].rpartition("/")[2]
                document["components"]["schemas"][name]["additionalProperties"] = False


async def build_on_startup(app: web.Application) -> None:
    """``on_startup``: the router is frozen by now, so the document is final."""
    app[openapi_key] = dumps(build(app))
