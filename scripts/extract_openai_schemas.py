#!/usr/bin/env python3
"""Extract the OpenAI response schemas the gateway's tests validate against.

Where the schemas come from
---------------------------
The official OpenAI OpenAPI description, repository ``openai/openai-openapi``
(https://github.com/openai/openai-openapi), file ``openapi.yaml`` at the repository
root, branch ``main``, commit ``f85dbe223d40e1a31cba812ab2d755c7e98a92a3``
(2026-08-21, "Add 'residency' field for project data residency configuration");
``openapi: 3.1.0``, ``info.version: 2.3.0``. The spec itself is not committed here
(it is about 3 MB); only the extract, ``tests/openai_schemas.json``, is.

How to regenerate
-----------------
::

    git clone https://github.com/openai/openai-openapi /tmp/openai-openapi
    git -C /tmp/openai-openapi checkout f85dbe223d40e1a31cba812ab2d755c7e98a92a3
    .venv/bin/python scripts/extract_openai_schemas.py /tmp/openai-openapi/openapi.yaml

For a newer snapshot, check out the wanted commit and pass ``--commit`` and ``--date``
(they are only recorded in the output's ``source``; when the YAML lies in a git work
tree they are read from git), then update the commit named above. If the file moved,
pass its new path and ``--source-path``.

What it writes
--------------
``tests/openai_schemas.json`` (or ``--output``): ``{"source": {...}, "components":
{name: schema}}`` holding the components in ``NEEDED`` and every component they
``$ref``, transitively, and nothing else. ``$ref``s ``#/components/schemas/X`` are
rewritten to ``#/components/X`` so that they resolve against the output file itself,
which ``tests/support/openai_spec.py`` uses as the root document.

The spec is OpenAPI 3.1 (so its schemas are JSON Schema 2020-12), but about a hundred
of its schemas still carry the OpenAPI 3.0 keyword ``nullable: true``, which JSON
Schema ignores: ``{"type": "string", "nullable": true}`` would reject ``null``. Those
are translated: a ``type`` becomes a list with ``"null"`` (and ``null`` joins an
``enum``); a schema built from ``$ref``/``allOf``/``anyOf``/``oneOf`` is wrapped as
``{"anyOf": [schema, {"type": "null"}]}``. ``nullable: false`` is dropped. Nothing else
is changed, except that the documentation-only ``x-oaiMeta`` blocks (long examples) are
dropped to keep the file small; other ``x-`` keys stay (validators ignore them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

NEEDED = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
)

REPO = "openai/openai-openapi"
SOURCE_PATH = "openapi.yaml"
COMMIT = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
COMMIT_DATE = "2026-08-21"

SPEC_PREFIX = "#/components/schemas/"
OUT_PREFIX = "#/components/"
DROPPED_KEYS = frozenset({"x-oaiMeta"})

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "openai_schemas.json"


def _component_of(ref: str) -> str:
    if not ref.startswith(SPEC_PREFIX):
        raise ValueError(f"unsupported $ref {ref!r} (only {SPEC_PREFIX}... is handled)")
    return ref[len(SPEC_PREFIX):].split("/", 1)[0]


def _refs(node: Any) -> set[str]:
    """Names of the components ``node`` refers to directly."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(_component_of(ref))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def closure(schemas: dict[str, Any], roots: tuple[str, ...]) -> list[str]:
    """``roots`` and every component they reference, transitively, sorted."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise KeyError(f"component {name!r} is not in the spec's components.schemas")
        seen.add(name)
        todo.extend(_refs(schemas[name]) - seen)
    return sorted(seen)


def convert(node: Any) -> Any:
    """Copy of ``node`` with refs rewritten, ``nullable`` translated, docs blocks dropped."""
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED_KEYS:
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = OUT_PREFIX + value[len(SPEC_PREFIX):]
        elif key in ("properties", "patternProperties", "$defs", "definitions"):
            # Maps of names to schemas: a property may well be called "nullable".
            out[key] = {name: convert(sub) for name, sub in value.items()}
        else:
            out[key] = convert(value)
    nullable = out.pop("nullable", None)
    if nullable is True:
        out = _allow_null(out)
    return out


def _allow_null(schema: dict[str, Any]) -> dict[str, Any]:
    if any(key in schema for key in ("$ref", "allOf", "anyOf", "oneOf", "not", "const")):
        # Keep annotations on the outside so the wrapped schema reads the same.
        outer = {k: schema.pop(k) for k in ("description", "title", "deprecated") if k in schema}
        return {**outer, "anyOf": [schema, {"type": "null"}]}
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if "null" not in types:
            schema["type"] = [*types, "null"]
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema  # no type constraint: null is already accepted


def _git(path: Path, *args: str) -> str | None:
    """``git args`` in the YAML's work tree, if the YAML is tracked there, unmodified."""
    def run(*command: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path.resolve().parent), *command],
            check=True, capture_output=True, text=True,
        ).stdout.strip()

    try:
        run("ls-files", "--error-unmatch", path.name)
        run("diff", "--quiet", "HEAD", "--", path.name)
        return run(*args) or None
    except (OSError, subprocess.CalledProcessError):
        return None


def dump(document: dict[str, Any]) -> str:
    """Compact JSON, one component a line (so a regeneration diffs readably)."""
    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    lines = ["{", f'"source":{compact(document["source"])},', '"components":{']
    items = list(document["components"].items())
    for index, (name, schema) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        lines.append(f"{compact(name)}:{compact(schema)}{comma}")
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("spec", type=Path, help="path of the OpenAI openapi.yaml")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--repo", default=REPO)
    parser.add_argument("--source-path", default=SOURCE_PATH,
                        help="the YAML's path inside the repository")
    parser.add_argument("--commit", help=f"commit of the YAML (default: from git, else {COMMIT})")
    parser.add_argument("--date",
                        help=f"date of that commit (default: from git, else {COMMIT_DATE})")
    args = parser.parse_args(argv)

    raw = args.spec.read_bytes()
    spec = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = spec["components"]["schemas"]
    missing = [name for name in NEEDED if name not in schemas]
    if missing:
        parser.error(f"not in the spec (renamed?): {', '.join(missing)}")

    commit = args.commit or _git(args.spec, "rev-parse", "HEAD") or COMMIT
    date = args.date or _git(args.spec, "log", "-1", "--format=%cs") or COMMIT_DATE
    names = closure(schemas, NEEDED)
    document = {
        "source": {
            "repo": args.repo,
            "url": f"https://github.com/{args.repo}",
            "path": args.source_path,
            "commit": commit,
            "date": date,
            "openapi": spec.get("openapi"),
            "info_version": spec.get("info", {}).get("version"),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "generator": "scripts/extract_openai_schemas.py",
            "roots": list(NEEDED),
            "notes": "refs rewritten to #/components/X; OpenAPI 'nullable: true' "
                     "translated to JSON Schema null; x-oaiMeta dropped",
        },
        "components": {name: convert(schemas[name]) for name in names},
    }
    args.output.write_text(dump(document), encoding="utf-8")
    json.loads(args.output.read_text(encoding="utf-8"))  # sanity: it parses
    print(f"wrote {args.output} ({len(names)} components: {', '.join(names)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
