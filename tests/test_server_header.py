"""The ``Server`` header names no versions (``server.server_header``), on the application's
answers and on those aiohttp's HTTP parser gives to requests it refuses, which no application
hook sees: checked on a real process, where the setting is applied."""

from __future__ import annotations

import pytest

from fastchat_api.config import ConfigError, build_config

from .processes import gateway_process
from .rawhttp import MALFORMED, exchange, request


@pytest.mark.parametrize(("setting", "expected"), [("", "fastchat_api"),
                                                   ("  server_header: edge-7 (internal)\n", "edge-7 (internal)")])
async def test_every_answer_carries_the_configured_server_header(fake, tmp_path, unused_tcp_port,
                                                                 setting, expected):
    config = tmp_path / "gateway.yaml"
    config.write_text(f"server:\n  host: 127.0.0.1\n{setting}controller:\n  address: {fake.address}\n")
    async with gateway_process(config, unused_tcp_port) as gateway:
        await gateway.wait_until_serving()
        answers = [
            await exchange(gateway.host, gateway.port, request("GET", "/health")),
            await exchange(gateway.host, gateway.port, request("GET", "/no/such/route")),
            await exchange(gateway.host, gateway.port, MALFORMED),
        ]
    assert [answer.status for answer in answers] == [200, 404, 400]
    for answer in answers:
        assert answer.values("Server") == [expected]


@pytest.mark.parametrize("value", ["", " padded", "two  spaces", "line\r\nInjected: yes", "naïve"])
def test_a_server_header_no_client_could_read_is_refused(value):
    with pytest.raises(ConfigError, match="^config: server.server_header: Not a header value"):
        build_config({"server": {"server_header": value}})
