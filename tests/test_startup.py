"""Start-up as an operator meets it, on real processes (``python -m fastchat_api``): settings
that would run the gateway other than meant stop it with one line, and a controller that cannot
be reached is said at once without holding the start-up back."""

from __future__ import annotations

import asyncio

import pytest

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
