"""Shared fixtures: a scripted FastChat stand-in, the gateway in front of it, and (for the
integration tier) the real FastChat controller and model worker."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from fastchat_api.app import create_app
from fastchat_api.config import build_config

from .fake_fastchat import FakeFastChat


@pytest.fixture
async def fake(aiohttp_server) -> FakeFastChat:
    """A controller + worker stand-in on loopback."""
    stand_in = FakeFastChat()
    server = await aiohttp_server(stand_in.app())
    stand_in.address = str(server.make_url("")).rstrip("/")
    return stand_in


@pytest.fixture
def make_client(aiohttp_client, fake) -> Callable[..., Awaitable[TestClient]]:
    """The gateway in front of ``fake``, with config sections overridden per test."""

    async def make(**sections: dict[str, Any]) -> TestClient:
        overrides = {"controller": {"address": fake.address, **sections.pop("controller", {})}}
        config = build_config(None, {**overrides, **sections})
        return await aiohttp_client(create_app(config))

    return make


@pytest.fixture
async def client(make_client) -> TestClient:
    return await make_client()
