"""Shared fixtures: a scripted FastChat stand-in, the gateway in front of it, and (for the
integration tier) the real FastChat controller and model worker."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import settings

import fastchat_api.app
from devstack.standin import StandIn
from fastchat_api import accesslog
from fastchat_api.app import create_app, runner_options
from fastchat_api.config import build_config
from fastchat_api.upstream import Upstream

from .support import FakeClock

# -- hypothesis: the whole fuzz in CI (CI=true), a tenth of it locally; HYPOTHESIS_PROFILE picks --
# test_fuzz.py scales each test's count by the loaded profile's max_examples.

settings.register_profile("ci", settings.get_profile("ci"), max_examples=1000)  # Hypothesis's own, derandomized
settings.register_profile("dev", settings.get_profile("default"), max_examples=100)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _in_ci() else "dev"))

@pytest.fixture
async def fake(aiohttp_server) -> StandIn:
    """A controller + worker stand-in on loopback."""
    stand_in = StandIn()
    server = await aiohttp_server(stand_in.app())
    stand_in.address = str(server.make_url("")).rstrip("/")
    return stand_in


@pytest.fixture
def make_server(aiohttp_server, fake) -> Callable[..., Awaitable[TestServer]]:
    """The gateway in front of ``fake``, with config sections overridden per test, served
    with the runner options production uses (the test server always cancels handlers)."""

    async def make(**sections: dict[str, Any]) -> TestServer:
        overrides = {"controller": {"address": fake.address, **sections.pop("controller", {})}}
        config = build_config(None, {**overrides, **sections})
        options = runner_options(config)
        del options["handler_cancellation"]
        return await aiohttp_server(create_app(config), **options)

    return make


@pytest.fixture
def make_client(aiohttp_client, make_server) -> Callable[..., Awaitable[TestClient]]:
    """A client of ``make_server``'s gateway (config sections as keywords)."""

    async def make(**sections: dict[str, Any]) -> TestClient:
        return await aiohttp_client(await make_server(**sections))

    return make


@pytest.fixture
async def client(make_client) -> TestClient:
    return await make_client()


@pytest.fixture
def access_lines(caplog) -> Callable[[], list[str]]:
    """The access log's lines so far (its logger caught from INFO on)."""
    logger = accesslog.logger.name
    caplog.set_level(logging.INFO, logger=logger)
    return lambda: [record.getMessage() for record in caplog.records if record.name == logger]


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """The clock of every gateway started after this fixture (caches, balancer, outage rule),
    moved by the test instead of waited for: call ``make_client`` in the test body."""
    fake_clock = FakeClock()
    monkeypatch.setattr(fastchat_api.app, "Upstream", functools.partial(Upstream, clock=fake_clock))
    return fake_clock


# -- integration tier: FastChat's real controller and model worker -----------------------------

MODEL = "tiny-llama"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """FastChat's controller and one model worker serving a tiny random Llama, plus our
    gateway as a real process in front of them; started once per test session."""
    from devstack.models import build_tiny_llama
    from devstack.stack import Stack

    directory = tmp_path_factory.mktemp("stack")
    model_path = build_tiny_llama(directory / "models", MODEL)
    with Stack(directory) as live:
        live.start_controller()
        live.start_worker(model_path, model_name=MODEL, conv_template="vicuna_v1.1")
        live.start_gateway()
        yield live


@pytest.fixture(scope="session")
def model_name() -> str:
    return MODEL


@pytest.fixture(scope="session")
def gateway_url(stack) -> str:
    """Base URL of our server (no trailing slash, no /v1)."""
    return stack.gateway.url


@pytest.fixture(scope="session")
def openai_client(gateway_url):
    """The official client, as users configure it for FastChat; no retries to hide errors."""
    import openai

    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="EMPTY", max_retries=0, timeout=120)
