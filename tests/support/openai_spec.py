"""Validate response bodies against the official OpenAI OpenAPI schemas.

``validate("CreateChatCompletionResponse", body)`` raises ``jsonschema.ValidationError``
with a readable message when ``body`` does not match. The schemas are an extract of
``openai/openai-openapi``'s ``openapi.yaml`` (see ``tests/openai_schemas.json``'s
``source`` and ``scripts/extract_openai_schemas.py`` for the commit and how to
regenerate it). The spec is OpenAPI 3.1, whose schemas are JSON Schema 2020-12, so the
Draft 2020-12 validator is used, without format checking (the spec's ``format``s, such
as ``unixtime``, are annotations). Like the spec, the schemas allow additional properties
unless they say otherwise.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match, relevance
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["ValidationError", "components", "source", "validate"]

SCHEMAS_FILE = Path(__file__).parents[1] / "openai_schemas.json"
_URI = "urn:fastchat-api:tests:openai-schemas"
_MAX_LISTED = 8


@cache
def _document() -> dict[str, Any]:
    return json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, DRAFT202012.create_resource(_document()))


def components() -> frozenset[str]:
    """Names of the components the extract holds."""
    return frozenset(_document()["components"])


def source() -> dict[str, Any]:
    """Where the extract came from (repo, path, commit, ...)."""
    return dict(_document()["source"])


@cache
def _validator(component: str) -> Draft202012Validator:
    if component not in _document()["components"]:
        raise KeyError(
            f"no OpenAI schema {component!r} in {SCHEMAS_FILE.name}; "
            f"have: {', '.join(sorted(components()))}"
        )
    schema = {"$ref": f"{_URI}#/components/{component}"}
    return Draft202012Validator(schema, registry=_registry())


def _describe(error: ValidationError) -> str:
    line = f"{error.json_path}: {error.message}"
    if error.context:
        # anyOf/oneOf: say what the branches object to, leaving out the bare type
        # mismatches of branches that plainly do not apply (e.g. {"type": "null"}).
        branch = [sub for sub in error.context if sub.validator != "type" or sub.relative_path]
        branch = branch or [best_match(error.context)]
        line += " (" + "; ".join(f"{sub.json_path}: {sub.message}" for sub in branch[:3]) + ")"
    return line


def validate(component: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` matches OpenAI's ``component``."""
    errors = sorted(_validator(component).iter_errors(body), key=relevance, reverse=True)
    if not errors:
        return
    listed = "\n".join(f"  - {_describe(error)}" for error in errors[:_MAX_LISTED])
    more = f"\n  ... and {len(errors) - _MAX_LISTED} more" if len(errors) > _MAX_LISTED else ""
    body_text = json.dumps(body, default=repr)
    if len(body_text) > 600:
        body_text = body_text[:600] + "..."
    first = errors[0]
    raise ValidationError(
        f"body does not match OpenAI {component} "
        f"({len(errors)} error{'s' if len(errors) > 1 else ''}):\n{listed}{more}\n"
        f"body: {body_text}",
        path=first.absolute_path,
        schema_path=first.absolute_schema_path,
        cause=first,
        context=errors,
    )
