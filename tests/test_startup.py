"""Start-up as an operator meets it, on real processes (``python -m fastchat_api``): settings
that would run the gateway other than meant stop it with one line, and a controller that cannot
be reached is said at once without holding the start-up back."""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiohttp import web

import fastchat_api.__main__ as fastchat_main
from fastchat_api import app as app_module
from fastchat_api.config import ConfigError, load_config

from .support import gateway_process, matching, run_cli, until, wait_for_line


@pytest.fixture
def refused(unused_tcp_port):
    """Runs the server with some arguments, and gives the one line it printed as it refused to
    start; fails if the server starts instead."""

    def run(*args: str) -> str:
        return _refused("--port", str(unused_tcp_port), *args)

    return run


def _refused(*args: str) -> str:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    return line


@pytest.mark.parametrize("value", ["", " , "])
def test_api_keys_naming_no_key_stop_the_start_up(refused, value):
    """``--api-keys "$UNSET"`` must not turn the key check off."""
    assert refused("--api-keys", value).startswith(f"fastchat_api: --api-keys: {value!r} names no key")


def test_api_keys_naming_no_key_do_not_override_the_files_keys(refused, tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("auth:\n  api_keys: [sk-one]\n")
    assert "--api-keys" in refused("--config", str(path), "--api-keys", "")


def test_a_flag_does_not_hide_a_bad_value_in_the_file(tmp_path, unused_tcp_port):
    path = tmp_path / "gateway.yaml"
    path.write_text('server:\n  port: "eighty"\n')
    assert _refused("--config", str(path), "--port", str(unused_tcp_port)) == (
        f"fastchat_api: {path}: server.port: Not a valid integer"
    )


def test_the_file_is_checked_alone_then_with_the_flags(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("server:\n  port: 8000\n")
    assert load_config(path, {"server": {"port": 8304}}).server.port == 8304
    with pytest.raises(ConfigError, match=r"^command line: server.port: Must be greater"):
        load_config(path, {"server": {"port": 0}})
    with pytest.raises(ConfigError, match=r"^command line: server.port: Must be greater"):
        load_config(None, {"server": {"port": 0}})
    path.write_text("server:\n  port: 0\n")
    with pytest.raises(ConfigError, match=rf"^{path}: server.port: Must be greater"):
        load_config(path, {"server": {"port": 8304}})


# -- the controller, checked as the server starts ----------------------------------------------


async def test_a_controller_refusing_connections_is_one_warning_at_start_up(tmp_path, unused_tcp_port):
    closed = f"http://127.0.0.1:{unused_tcp_port}"
    async with gateway_process(tmp_path, controller={"address": closed}) as gateway:
        line = await wait_for_line(gateway, r"\| WARNING \|")
        assert "At start-up: The controller" in line and "cannot be reached" in line
        assert closed in line  # for the operator, whatever clients are told
        assert len(matching(gateway, r"\| WARNING \|")) == 1


async def test_a_silent_controller_does_not_hold_the_start_up_back(tmp_path):
    """The controller accepts and never answers (upstream.read_timeout: 100 s): /health is
    served meanwhile, while the start-up's call to the controller waits."""
    connections = []
    silent = await asyncio.start_server(lambda _, writer: connections.append(writer), "127.0.0.1", 0)
    address = "http://127.0.0.1:%d" % silent.sockets[0].getsockname()[1]
    try:
        async with gateway_process(tmp_path, controller={"address": address}) as gateway:
            await until(lambda: connections, "the start-up's call to the controller")
            assert not matching(gateway, r"\| WARNING \|")
    finally:
        for writer in connections:
            writer.close()
        silent.close()


async def test_no_warning_when_the_controller_answers(fake, tmp_path):
    async with gateway_process(tmp_path, controller={"address": fake.address}) as gateway:
        await until(lambda: fake.sent("/list_models"), "the start-up's call to the controller")
    assert not matching(gateway, r"\| (WARNING|ERROR) \|")


# -- the heap made at start-up is frozen, in serving processes only --------------------------


def test_the_served_app_freezes_its_start_up_heap(monkeypatch):
    """``python -m fastchat_api`` serves an app whose last start-up step is the freeze."""
    served = []
    monkeypatch.setattr(fastchat_main, "setup_process", lambda config: None)  # this process's logging
    monkeypatch.setattr(fastchat_main.web, "run_app", lambda app, **_: served.append(app))
    assert fastchat_main.main(["--port", "1"]) == 0
    assert served and served[0].on_startup[-1] is app_module.freeze_heap


async def test_gunicorns_app_freezes_its_start_up_heap(monkeypatch):
    monkeypatch.delenv(app_module.CONFIG_ENV, raising=False)
    monkeypatch.setattr(app_module, "setup_process", lambda config: None)
    runner = await app_module.app_factory()
    assert runner.app.on_startup[-1] is app_module.freeze_heap


def test_the_tests_apps_do_not_freeze_their_heap():
    """A freeze per test app would keep every earlier test's garbage for good."""
    assert app_module.freeze_heap not in app_module.create_app(load_config(None)).on_startup


async def test_the_freeze_moves_what_exists_out_of_the_collectors_reach():
    try:
        await app_module.freeze_heap(web.Application())
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
