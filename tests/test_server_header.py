"""The ``Server`` header names no versions (``server.server_header``), on the application's
answers and on those aiohttp's HTTP parser gives to requests it refuses, which no application
hook sees: checked on a real process, where the setting is applied."""

from __future__ import annotations

import pytest

from fastchat_api.config import ConfigError, build_config

from .support import MALFORMED, exchange, gateway_process, request


@pytest.mark.parametrize(("setting", "expected"), [({}, "fastchat_api"),
                                                   ({"server_header": "edge-7 (internal)"}, "edge-7 (internal)")])
async def test_every_answer_carries_the_configured_server_header(fake, tmp_path, setting, expected):
    async with gateway_process(tmp_path, server=setting, controller={"address": fake.address}) as gateway:
        answers = [
            await exchange(gateway, request("GET", "/health")),
            await exchange(gateway, request("GET", "/no/such/route")),
            await exchange(gateway, MALFORMED),
        ]
    assert [answer.status for answer in answers] == [200, 404, 400]
    for answer in answers:
        assert answer.values("Server") == [expected]


@pytest.mark.parametrize("value", ["", " padded", "two  spaces", "line\r\nInjected: yes", "naïve"])
def test_a_server_header_no_client_could_read_is_refused(value):
    with pytest.raises(ConfigError, match="^config: server.server_header: Not a header value"):
        build_config({"server": {"server_header": value}})
