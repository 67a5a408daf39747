"""The OpenAPI 3.1 document of the running app, built from its router and marshmallow schemas.

Paths come from the app's router, so a new route is listed without anyone remembering to. A
handler's request body is the schema it declares with ``@schemas.accepts(...)``; its docstring
is the operation's text (the first paragraph its summary). The document is built once, when the app starts and its router is frozen.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields, validate
from marshmallow.experimental.context import Context

from . import __version__, schemas
from .response_schemas import StreamErrorSchema, response_schemas
from .jsonutil import dumps
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


_TYPED = (fields.Boolean, fields.Number, fields.String)  # typed by apispec; ours only coerce


def _describe_own_field(self: Any, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: our custom fields take JSON apispec cannot type (a string or
    a list, ...), so say in words what they take, or why they are refused."""
    if type(field).__module__ != schemas.__name__ or isinstance(field, _TYPED):
        return {}
    text = getattr(field, "reason", "") or inspect.getdoc(type(field)) or ""
    return {"description": " ".join(text.split("\n\n")[0].split()).replace("``", "")}


def _type_own_field(self: Any, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: the JSON types and limits our custom fields take, which
    apispec cannot know (a string or a list of strings, ...), as the fields declare them."""
    describe = getattr(field, "json_schema", None)
    return describe(ret) if callable(describe) and type(field).__module__ == schemas.__name__ else {}


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
    operation: dict[str, Any] = {
        "summary": " ".join(summary.split()),
        "tags": [handler.__module__.rpartition(".")[2]],
        "responses": {
            "200": _success(spec, handler),
            "default": {"description": "An error", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
        },
    }
    if description:
        operation["description"] = description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(canonical)
    ]
    if parameters:
        operation["parameters"] = parameters
    body = schemas.request_schema(handler)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        if "stream" in body.fields:
            operation["responses"]["200"]["description"] = "JSON, or server-sent events with stream: true"
    keys = app[keys_key]
    if keys.enabled and canonical.startswith(keys.prefixes):
        operation["security"] = [{"apiKey": []}]
    elif canonical == "/metrics" and app[config_key].metrics.token is not None:
        operation["security"] = [{"metricsToken": []}]
    return operation


def build(app: web.Application) -> dict[str, Any]:
    """The document of every route of ``app`` (HEAD and CORS preflights aside)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="fastchat_api",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": "OpenAI-compatible API server for FastChat controllers and workers."},
    )
    assert plugin.converter is not None  # made by plugin.init_spec, which APISpec() called
    plugin.converter.add_attribute_function(_describe_own_field)
    plugin.converter.add_attribute_function(_type_own_field)
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("metricsToken", {"type": "http", "scheme": "bearer"})
    operations: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method in _SKIPPED_METHODS or route.resource is None:
            continue
        canonical = route.resource.canonical
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
