"""FastChat's ``FASTCHAT_WORKER_API_TIMEOUT`` (seconds, 100 when unset) is the default of
``upstream.read_timeout``, as ``FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE`` is of the batch size."""

from __future__ import annotations

import pytest

from fastchat_api.config import WORKER_TIMEOUT_ENV, ConfigError, build_config

from .support import CHAT


def test_the_default_is_fastchat_environment_variable(monkeypatch):
    monkeypatch.delenv(WORKER_TIMEOUT_ENV, raising=False)
    assert build_config().upstream.read_timeout == 100
    monkeypatch.setenv(WORKER_TIMEOUT_ENV, "250")
    assert build_config().upstream.read_timeout == 250
    monkeypatch.setenv(WORKER_TIMEOUT_ENV, "0.5")
    assert build_config().upstream.read_timeout == 0.5


def test_the_file_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(WORKER_TIMEOUT_ENV, "250")
    assert build_config({"upstream": {"read_timeout": 30}}).upstream.read_timeout == 30


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf", ""])
def test_a_bad_value_stops_the_server_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(WORKER_TIMEOUT_ENV, value)
    expected = rf"^environment: {WORKER_TIMEOUT_ENV}: must be a positive number of seconds, not '{value}'$"
    with pytest.raises(ConfigError, match=expected):
        build_config()
    assert build_config({"upstream": {"read_timeout": 30}}).upstream.read_timeout == 30


async def test_the_workers_are_held_to_it(monkeypatch, make_client, fake):
    monkeypatch.setenv(WORKER_TIMEOUT_ENV, "0.2")
    client = await make_client()
    fake.delay = 0.5
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 504
    assert (await resp.json())["error"]["code"] == "upstream_timeout"
