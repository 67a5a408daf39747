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
from marshmallow import Schema, fields

from . import __version__, schemas
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

    object = fields.Constant("error", required=True)
    message = fields.String(required=True)
    code = fields.Integer(required=True, metadata={"description": "FastChat's numeric error code"})
    error = fields.Nested(ErrorDetailSchema, required=True)


ERROR_SCHEMA = ErrorSchema()


def _describe_own_field(self: Any, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: our custom fields take JSON apispec cannot type (a string or
    a list, ...), so say in words what they take, or why they are refused."""
    if type(field).__module__ != schemas.__name__:
        return {}
    text = getattr(field, "reason", "") or inspect.getdoc(type(field)) or ""
    return {"description": " ".join(text.split("\n\n")[0].split()).replace("``", "")}


def _operation(route: web.AbstractRoute, canonical: str, app: web.Application) -> dict[str, Any]:
    handler = route.handler
    doc = inspect.getdoc(handler) or handler.__name__.replace("_", " ").capitalize()
    summary, _, description = doc.partition("\n\n")
    operation: dict[str, Any] = {
        "summary": " ".join(summary.split()),
        "tags": [handler.__module__.rpartition(".")[2]],
        "responses": {
            "200": {"description": "Success"},
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
    """The document of every route of ``app`` (HEAD, CORS preflights and the trailing-slash
    forms aside)."""
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
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("metricsToken", {"type": "http", "scheme": "bearer"})
    operations: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method in _SKIPPED_METHODS or route.resource is None:
            continue
        canonical = route.resource.canonical
        if slash_form(canonical):
            continue
        operations.setdefault(canonical, {})[route.method.lower()] = _operation(route, canonical, app)
    for path, methods in sorted(operations.items()):
        spec.path(path=path, operations=methods)
    return spec.to_dict()


async def build_on_startup(app: web.Application) -> None:
    """``on_startup``: the router is frozen by now, so the document is final."""
    app[openapi_key] = dumps(build(app))
