"""Header values that are not UTF-8, sent on a raw socket: aiohttp hands them to the gateway with
lone surrogates in place of the odd bytes. Nothing the gateway reads from a header may then
crash it: a bad key is a 401, every answer is in the gateway's format, every request gets its
access line (with the bytes escaped)."""

from __future__ import annotations

import json
import logging
import shlex

import pytest

from .support import CHAT_BYTES, exchange, gateway_process, matching, request

ODD = b"\xff\xfe\x80"
KEY = {"Authorization": "Bearer sk-one"}


@pytest.fixture
def gateway(make_server):
    """A function starting the gateway, served with the runner options of production (the
    access log on), keyed, its metrics behind a token."""

    def start(access_format: str = "json", **sections):
        return make_server(**{"auth": {"api_keys": ["sk-one"]}, "metrics": {"token": "scrape"},
                              "logging": {"access_format": access_format}} | sections)

    return start


def assert_gateway_error(answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.header("Content-Type") == "application/json"
    assert answer.json()["error"]["code"] == code


async def test_a_key_that_is_not_utf8_is_a_401(gateway):
    server = await gateway()
    answer = await exchange(server, request("GET", "/v1/models", {"Authorization": b"Bearer sk-" + ODD}))
    assert_gateway_error(answer, 401, "invalid_api_key")


async def test_a_metrics_token_that_is_not_utf8_is_a_401(gateway):
    server = await gateway()
    answer = await exchange(server, request("GET", "/metrics", {"Authorization": b"Bearer " + ODD}))
    assert_gateway_error(answer, 401, "invalid_metrics_token")


async def test_a_key_of_any_bytes_from_the_environment_opens_the_api(gateway, monkeypatch):
    """Python keeps an environment variable's odd bytes as surrogates too: they compare as bytes."""
    monkeypatch.setenv("GATEWAY_KEYS", b"sk-\xff".decode("utf-8", "surrogateescape"))
    server = await gateway(auth={"api_keys_env": "GATEWAY_KEYS"})
    answer = await exchange(server, request("GET", "/v1/models", {"Authorization": b"Bearer sk-\xff"}))
    assert answer.status == 200
    answer = await exchange(server, request("GET", "/v1/models", {"Authorization": b"Bearer sk-\xfe"}))
    assert_gateway_error(answer, 401, "invalid_api_key")


async def test_an_odd_request_id_is_replaced(gateway):
    server = await gateway()
    answer = await exchange(server, request("GET", "/health", {"X-Request-Id": b"id-" + ODD}))
    assert answer.status == 200 and answer.header("X-Request-Id").startswith("req-")


async def test_an_odd_content_type_is_a_415(gateway):
    server = await gateway()
    answer = await exchange(server, request(
        "POST", "/v1/chat/completions", KEY | {"Content-Type": b"application/j" + ODD + b"son"}, CHAT_BYTES))
    assert_gateway_error(answer, 415, "unsupported_media_type")


HEADERS = ["Authorization", "X-Request-Id", "Content-Type", "User-Agent", "Origin", "Accept",
           "Accept-Encoding", "Host", "Cookie", "X-Forwarded-For", "Access-Control-Request-Method",
           "Access-Control-Request-Headers"]
ROUTES = [("GET", "/v1/models", b""), ("POST", "/v1/chat/completions", CHAT_BYTES), ("GET", "/metrics", b""),
          ("GET", "/ready", b""), ("OPTIONS", "/v1/chat/completions", b"")]


@pytest.mark.parametrize("name", HEADERS)
async def test_no_header_value_crashes_any_route(gateway, name, caplog, access_lines):
    """Each header the gateway or aiohttp reads, with odd bytes, on each kind of route: an
    answer that is no 5xx, errors in the gateway's format, one access line each, no traceback."""
    server = await gateway()
    for method, path, body in ROUTES:
        token = "Bearer scrape" if path == "/metrics" else "Bearer sk-one"
        headers = {"Authorization": token, "Content-Type": "application/json",
                   "Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        headers[name] = ODD
        answer = await exchange(server, request(method, path, headers, body))
        assert answer.status < 500, (method, path, answer.body)
        if answer.status >= 400:
            assert "error" in answer.json()
    assert len(access_lines()) == len(ROUTES)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("access_format", ["json", "logfmt"])
async def test_an_odd_user_agent_gets_its_access_line_with_the_bytes_escaped(gateway, access_format, access_lines):
    server = await gateway(access_format)
    answer = await exchange(server, request("GET", "/health", {"User-Agent": b"agent/" + ODD}))
    assert answer.status == 200
    (line,) = access_lines()
    if access_format == "json":
        fields = json.loads(line)
    else:
        fields = dict(pair.split("=", 1) for pair in shlex.split(line))
    assert fields["user_agent"] == "agent/\\xff\\xfe\\x80"
    assert fields["path"] == "/health"


async def test_odd_bytes_in_a_path_are_quoted_in_the_error(fake, tmp_path):
    """aiohttp's pure-Python HTTP parser (``AIOHTTP_NO_EXTENSIONS``, or where its C parser is not
    built) lets such bytes into the path, where the C parser refuses them: the 404 that quotes
    the model name goes out all the same (orjson refuses the surrogates that stand for them)."""
    async with gateway_process(tmp_path, env={"AIOHTTP_NO_EXTENSIONS": "1"},
                               controller={"address": fake.address}) as gateway:
        answer = await exchange(gateway, request("GET", "/v1/models/a\xffb".encode("latin-1")))
    assert_gateway_error(answer, 404, "model_not_found")
    assert answer.json()["error"]["message"].endswith("your model a\udcffb")
    assert not matching(gateway, "Traceback|ERROR")
