"""The access log: one JSON or logfmt line per request, with the facts handlers recorded."""

from __future__ import annotations

import json
import logging
import os
import shlex

import pytest

from fastchat_api import accesslog
from fastchat_api.accesslog import logfmt
from fastchat_api.keys import key_id

from .support import CHAT


@pytest.fixture
def served(aiohttp_client, make_server, access_lines):
    """The gateway served with the runner options both ways of serving use, and its log lines."""

    async def make(access_format: str):
        server = await make_server(auth={"api_keys": ["sk-one"]}, logging={"access_format": access_format})
        return await aiohttp_client(server, headers={"Authorization": "Bearer sk-one"}), access_lines

    return make


async def test_json_lines_carry_request_key_model_tokens_and_duration(served):
    client, lines = await served("json")
    resp = await client.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "req-42"})
    assert resp.status == 200
    (line,) = lines()
    entry = json.loads(line)
    assert entry["request_id"] == "req-42"
    assert entry["key"] == key_id("sk-one") and "sk-one" not in line
    assert entry["model"] == "fake-model"
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/v1/chat/completions", 200)
    assert (entry["prompt_tokens"], entry["completion_tokens"]) == (10, 4)
    assert entry["duration_ms"] >= 0 and entry["pid"] == os.getpid()
    assert entry["ts"].endswith("+00:00") and "ttft_ms" not in entry


async def test_stream_lines_have_time_to_first_token(served):
    client, lines = await served("json")
    resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": True})
    await resp.read()
    (entry,) = [json.loads(line) for line in lines()]
    assert entry["status"] == 200 and entry["completion_tokens"] == 4
    assert 0 <= entry["ttft_ms"] <= entry["duration_ms"]


async def test_refused_requests_are_logged_without_key_or_model(served):
    client, lines = await served("json")
    resp = await client.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"})
    assert resp.status == 401
    (entry,) = [json.loads(line) for line in lines()]
    assert entry["status"] == 401 and "key" not in entry and "model" not in entry
    assert "sk-wrong" not in lines()[0]


async def test_logfmt_lines(served):
    client, lines = await served("logfmt")
    await client.post("/v1/chat/completions", json=CHAT, headers={"User-Agent": "my app/1.0"})
    (line,) = lines()
    fields = dict(pair.split("=", 1) for pair in shlex.split(line))
    assert fields["status"] == "200" and fields["model"] == "fake-model"
    assert fields["completion_tokens"] == "4" and fields["user_agent"] == "my app/1.0"


async def test_off_writes_nothing(served):
    client, lines = await served("off")
    assert (await client.get("/health")).status == 200
    assert lines() == []


def test_logfmt_quotes_what_needs_it():
    assert logfmt({"a": "plain-1.0/x", "b": 'say "hi"\nnow', "c": "", "d": 3}) == (
        'a=plain-1.0/x b="say \\"hi\\"\\nnow" c="" d=3'
    )


async def test_lines_are_info_records_of_the_access_logger_through_its_filters(served, caplog):
    """Operators route and filter access lines with logging's own means: the logger's name,
    the INFO level, filters on the logger."""
    client, lines = await served("json")
    await client.get("/v1/models")
    (record,) = [r for r in caplog.records if r.name == accesslog.logger.name]
    assert record.levelno == logging.INFO
    accesslog.logger.addFilter(lambda record: "/v1/models" not in record.getMessage())
    try:
        await client.get("/v1/models")
        await client.get("/health")
    finally:
        accesslog.logger.filters.clear()
    assert len(lines()) == 2 and '"/health"' in lines()[-1]
