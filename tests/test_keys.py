"""API keys from a file and the environment, reloaded on a changed file or on SIGHUP."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from fastchat_api import keys
from fastchat_api.app import create_app
from fastchat_api.config import AuthConfig, ConfigError, build_config
from fastchat_api.typedefs import keys_key

from .support import until


async def status(client, key: str) -> int:
    resp = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    return resp.status


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "api_keys"
    path.write_text("# rotated monthly\nsk-old  # alice\n\n")
    return path


async def test_key_file_changes_apply_on_the_next_request(make_client, key_file, monkeypatch):
    monkeypatch.setattr(keys, "CHECK_INTERVAL", 0.0)
    client = await make_client(auth={"api_keys_file": str(key_file)})
    assert await status(client, "sk-old") == 200
    assert await status(client, "sk-new") == 401
    key_file.write_text("sk-new\n")
    assert await status(client, "sk-new") == 200
    assert await status(client, "sk-old") == 401


async def test_key_file_replaced_by_rename_is_noticed(make_client, key_file, tmp_path, monkeypatch):
    monkeypatch.setattr(keys, "CHECK_INTERVAL", 0.0)
    client = await make_client(auth={"api_keys_file": str(key_file)})
    staged = tmp_path / "api_keys.new"
    staged.write_text("sk-new\n")
    os.utime(staged, ns=(key_file.stat().st_atime_ns, key_file.stat().st_mtime_ns))
    staged.replace(key_file)
    assert await status(client, "sk-new") == 200


async def test_sighup_reloads_at_once(make_client, key_file, monkeypatch):
    monkeypatch.setattr(keys, "CHECK_INTERVAL", 3600.0)  # only the signal can reload here
    client = await make_client(auth={"api_keys_file": str(key_file)})
    key_file.write_text("sk-new\n")
    assert await status(client, "sk-new") == 401
    os.kill(os.getpid(), signal.SIGHUP)
    store = client.app[keys_key]
    await until(lambda: store.identify("sk-new") is not None)  # the loop ran the handler
    assert await status(client, "sk-new") == 200
    assert await status(client, "sk-old") == 401


async def test_unreadable_file_keeps_the_keys_in_force(make_client, key_file, monkeypatch, caplog):
    monkeypatch.setattr(keys, "CHECK_INTERVAL", 0.0)
    client = await make_client(auth={"api_keys_file": str(key_file)})
    key_file.unlink()
    assert await status(client, "sk-old") == 200
    assert "cannot read" in caplog.text and "1 keys in force are kept" in caplog.text


async def test_empty_key_file_refuses_everyone(make_client, key_file):
    key_file.write_text("# nobody for now\n")
    client = await make_client(auth={"api_keys_file": str(key_file)})
    assert await status(client, "anything") == 401


async def test_keys_from_the_environment_and_the_yaml(make_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_KEYS", "sk-env1, sk-env2,")
    client = await make_client(auth={"api_keys": ["sk-yaml"], "api_keys_env": "GATEWAY_KEYS"})
    for key in ("sk-yaml", "sk-env1", "sk-env2"):
        assert await status(client, key) == 200
    assert await status(client, "sk-other") == 401


def test_missing_sources_stop_start_up(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEYS", raising=False)
    with pytest.raises(ConfigError, match="auth.api_keys_env: the environment variable NO_SUCH_KEYS"):
        create_app(build_config({"auth": {"api_keys_env": "NO_SUCH_KEYS"}}))
    with pytest.raises(ConfigError, match="auth.api_keys_file: cannot read"):
        create_app(build_config({"auth": {"api_keys_file": str(tmp_path / "none")}}))


def test_file_is_looked_at_most_once_a_second(key_file, monkeypatch):
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(keys, "time", SimpleNamespace(monotonic=lambda: clock.now))
    store = keys.KeyStore(AuthConfig(api_keys_file=str(key_file)))
    key_file.write_text("sk-new\n")
    clock.now += 0.5
    assert store.identify("sk-new") is None
    clock.now += 0.6
    assert store.identify("sk-new") == keys.Key(keys.key_id("sk-new"))


def test_key_identity_reveals_nothing():
    identity = keys.key_id("sk-secret-value")
    assert identity.startswith("key-") and len(identity) == 12 and "secret" not in identity
    assert identity == keys.key_id("sk-secret-value") != keys.key_id("sk-other")
