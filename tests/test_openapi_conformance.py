"""The server against its own ``/openapi.json``, with schemathesis: every operation of the
document, positive and negative data, every check (server errors, status codes, content types,
response headers and bodies against the document, schema-valid requests accepted, invalid ones
refused), against the in-process app in front of the FastChat stand-in.

Bounded: a fixed number of examples per operation and generation phase, ``SCHEMATHESIS_EXAMPLES``
(10 by default, 50 under ``CI=true``). Schema-valid requests name the stand-in's model, so that
they reach generation rather than a 404. In FastChat's mode (the default) the server accepts
more than the document asks (FastChat's coercions, unknown fields ignored), so there the check
that invalid data is refused is left to the strict app, where the document is exact.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Iterator

import pytest
import schemathesis
from aiohttp import web
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES

from devstack.standin import StandIn
from fastchat_api import openapi
from fastchat_api.app import create_app
from fastchat_api.config import build_config

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES") or (50 if os.environ.get("CI") == "true" else 10))
# The coverage phase (every boundary of every field: 10 MB strings, 2049-item lists) takes
# minutes; it runs under CI or with SCHEMATHESIS_COVERAGE=1.
COVERAGE = (os.environ.get("SCHEMATHESIS_COVERAGE") or os.environ.get("CI")) in ("1", "true")
MODEL = "fake-model"
_NEGATIVE_CHECK = "negative_data_rejection"


class Served:
    """The stand-in and the gateway on loopback, in an event loop of their own in a thread (the
    schemathesis test calls them synchronously)."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.loop = asyncio.new_event_loop()
        self.runners: list[web.AppRunner] = []
        self.url = ""

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _start(self) -> None:
        fake = StandIn(models=[MODEL], multimodal=[MODEL])
        fake.address = await self._serve(fake.app())
        config = build_config(None, {"controller": {"address": fake.address},
                                     "compat": {"strict": self.strict}})
        self.url = await self._serve(create_app(config))

    async def _stop(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()

    def __enter__(self) -> Served:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _document_schema(strict: bool) -> Any:
    """The app's own document (as ``/openapi.json`` serves it), for schemathesis."""
    document = openapi.build(create_app(build_config(None, {"compat": {"strict": strict}})))
    config = SchemathesisConfig.from_dict({
        "generation": {"mode": "all", "max-examples": EXAMPLES},
        "phases": {"coverage": {"enabled": COVERAGE}},
        # A body past server.client_max_size is refused before it is read: 413 is a refusal.
        "checks": {_NEGATIVE_CHECK: {"enabled": strict, "expected-statuses": [
            *NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]}},
    })
    return schemathesis.openapi.from_dict(document, config=config)


def _served_model(case: Any) -> None:
    """Schema-valid bodies name the served model (the document cannot know it)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    if isinstance(case.body.get("model"), str):
        case.body["model"] = MODEL
    for item in case.body.get("prompts") or ():
        if isinstance(item, dict) and isinstance(item.get("model"), str):
            item["model"] = MODEL


def _free_text(case: Any) -> None:
    """Bodies ask for free text: the stand-in writes no JSON, so a JSON ``response_format``
    rightly ends in a 502 (``invalid_model_output``), which the server-error check counts as
    a failure; structured outputs are tested in test_structured.py."""
    if isinstance(case.body, dict) and isinstance(case.body.get("response_format"), dict):
        case.body["response_format"] = {"type": "text"}


_TOOL_FIELDS = ("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls")


def _no_tools(case: Any) -> None:
    """Schema-valid bodies offer no tools: what the document cannot say about them (a usable
    JSON Schema as ``parameters``, a ``tool_choice`` naming a listed function, no JSON
    ``response_format`` or ``logprobs`` beside them) is a 400, and a required call the
    stand-in never writes a 502; tool calling is tested in tests/tools/. Invalid bodies keep
    them, so that their refusal is still checked."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and isinstance(case.body, dict):
        for name in _TOOL_FIELDS:
            case.body.pop(name, None)


def _checks(strict: bool) -> list[Any]:
    return [check for check in CHECKS.get_all() if strict or check.__name__ != _NEGATIVE_CHECK]


@pytest.fixture(scope="module")
def default_url() -> Iterator[str]:
    with Served(strict=False) as served:
        yield served.url


@pytest.fixture(scope="module")
def strict_url() -> Iterator[str]:
    with Served(strict=True) as served:
        yield served.url


DEFAULT = _document_schema(strict=False)
STRICT = _document_schema(strict=True)


@DEFAULT.parametrize()
def test_fastchat_mode_answers_as_its_document_says(case: Any, default_url: str) -> None:
    _served_model(case)
    _free_text(case)
    _no_tools(case)
    case.call_and_validate(base_url=default_url, checks=_checks(strict=False), timeout=30)


@STRICT.parametrize()
def test_strict_mode_accepts_and_answers_exactly_its_document(case: Any, strict_url: str) -> None:
    _served_model(case)
    _free_text(case)
    _no_tools(case)
    case.call_and_validate(base_url=strict_url, checks=_checks(strict=True), timeout=30)
