"""Structured outputs: ``response_format``'s JSON modes, for any FastChat worker.

No FastChat worker constrains its output, so the gateway asks and checks: the schema goes into
the system turn (``structured.instruction``, or a model's own in
``structured.model_instructions``), the assistant turn opens with the start of the JSON value
the schema asks for (``{`` for an object, with its first property's name when the schema fixes
it), the stream is closed as soon as the value is complete, and the value is read
(``jsonvalue``) and validated with the ``jsonschema`` library. ``guided`` does the watching and
the bounded retries.

What conforms: under ``json_object`` a JSON object; under ``json_schema`` a JSON value valid
against the schema. With ``strict: false`` a JSON value that fails the schema is still
answered when no attempt did better (OpenAI's non-strict mode does not promise the schema);
with ``strict: true`` it never is.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Iterator

import orjson
from jsonschema import Draft202012Validator, SchemaError, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

from . import errors
from .config import StructuredConfig
from .guided import Verdict
from .jsonvalue import ValueEnd, parse
from .protocol import ResponseFormat

_ANY_OBJECT = {"type": "object"}  # what json_object asks for


KEPT_SCHEMA_BYTES = 64 * 1024  # a larger schema is checked every time, its verdict not kept


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` cannot be used, in a sentence for a 400; None when it can.

    It must be a valid JSON Schema of its ``$schema`` draft (2020-12 when it names none), and
    every ``$ref`` must point into the schema itself (``#/$defs/...``): nothing is fetched.
    A schema nested too deeply for ``jsonschema`` to check (about 100 levels; it recurses)
    cannot be used either.

    Checking costs about 0.6 ms (``check_schema`` validates against the draft's metaschema)
    and clients send the same tools and schemas with every request, so the verdicts on the
    last 512 schemas of up to ``KEPT_SCHEMA_BYTES`` of JSON are kept, by their JSON as sent
    (key order kept: the first error found depends on it).
    """
    try:
        text = orjson.dumps(schema)
    except orjson.JSONEncodeError:  # past orjson's 255 levels or 64-bit integers
        return _problem(schema)
    if len(text) > KEPT_SCHEMA_BYTES:
        return _problem(schema)
    return _kept_problem(text)


@functools.lru_cache(maxsize=512)
def _kept_problem(text: bytes) -> str | None:
    return _problem(orjson.loads(text))


def _problem(schema: dict[str, Any]) -> str | None:
    try:
        validators.validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        where = exc.json_path if exc.path else "its top level"
        return f"Not a valid JSON Schema at {where}: {exc.message}"
    except RecursionError:
        return "The schema is nested too deeply to be checked; flatten it (with $defs and $ref)."
    refs = list(_refs(schema))
    if refs:
        resolver = Registry().with_resource(
            "", specification_with(str(schema.get("$schema", "")), default=DRAFT202012).create_resource(schema)
        ).resolver()
        for ref in refs:
            try:
                if not ref.startswith("#"):
                    raise Unresolvable(ref)
                resolver.lookup(ref)
            except Unresolvable:
                return f"The '$ref' {ref!r} does not point into the schema; only references within it are followed."
    return None


def _refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` string in a schema, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


_MAX_OPENING_DEPTH = 8


def opening(schema: Any, depth: int = 0) -> str:
    """The start of the JSON value ``schema`` asks for, as far as the schema fixes it: ``{``
    for an object, followed by its first property's name and that property's own opening
    when the property is required (the order strict outputs follow): ``{"name": "`` for a
    required string ``name``; ``[`` for an array, ``"`` for a string (or an enum of strings);
    nothing where the schema leaves the type open. Small models follow a typed opening far
    better than the schema alone (SmolLM2-135M wrote ``{"name": 123`` after ``{"name": ``)."""
    if not isinstance(schema, dict) or depth > _MAX_OPENING_DEPTH:
        return ""
    kind = schema.get("type")
    if kind == "object":
        properties, required = schema.get("properties"), schema.get("required")
        if not isinstance(properties, dict) or not properties or not isinstance(required, list):
            return "{"
        first, inner = next(iter(properties.items()))
        if not isinstance(first, str) or first not in required:
            return "{"
        return "{" + json.dumps(first, ensure_ascii=False) + ": " + opening(inner, depth + 1)
    if kind == "string" or _strings_only(schema.get("enum")):
        return '"'
    return "[" if kind == "array" else ""


def _strings_only(values: Any) -> bool:
    return isinstance(values, list) and bool(values) and all(isinstance(value, str) for value in values)


class JSONGuide:
    """One request's ``response_format`` as a ``guided.Guide``."""

    __slots__ = ("kind", "name", "strict", "schema", "opening", "instruction", "_validator")

    def __init__(self, form: ResponseFormat, instruction: str) -> None:
        self.kind: str = form.type
        self.name = form.name
        self.strict = form.strict or form.type == "json_object"
        self.schema = form.schema if form.type == "json_schema" else _ANY_OBJECT
        self.opening = opening(self.schema)
        self.instruction = instruction.replace("{schema}", json.dumps(self.schema, ensure_ascii=False))
        cls = validators.validator_for(self.schema, default=Draft202012Validator)
        self._validator: Validator = cls(self.schema)

    def end(self) -> ValueEnd:
        return ValueEnd()

    def judge(self, text: str) -> Verdict:
        """JSON, and valid against the schema (best_match's error said when not)."""
        parsed = parse(text)
        if parsed.cut_short:
            return Verdict(False, False, "the output ended before the JSON value did")
        if parsed.error is not None:
            return Verdict(False, False, f"the output is not JSON ({parsed.error})")
        error = best_match(self._validator.iter_errors(parsed.value))
        if error is None:
            return Verdict(True, True)
        where = f" at {error.json_path}" if error.path else ""
        return Verdict(False, not self.strict, f"the JSON does not match the schema{where}: {error.message}")

    def failure(self, attempts: int, verdict: Verdict) -> errors.APIError:
        wanted = "a JSON object" if self.kind == "json_object" else f"JSON matching the schema '{self.name}'"
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        return errors.invalid_output(
            f"The model did not produce {wanted} in {tries}; the last: {verdict.reason}. "
            "Try again, or ask for a simpler shape."
        )


def guide(form: ResponseFormat, config: StructuredConfig, model: str) -> JSONGuide:
    """The guide for ``form`` on ``model``: the model's own instruction, or the default."""
    return JSONGuide(form, config.model_instructions.get(model, config.instruction))
