"""The access log: one JSON or logfmt line per request, with the facts handlers recorded."""

from __future__ import annotations

import json
import logging
import os
import shlex

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

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


@pytest.fixture
def sole_logger():
    """A logger set up as ``setup_access_log`` sets up the access logger: its one batching
    handler, no propagation (a logger of its own, out of reach of pytest's capture)."""
    logger = logging.Logger("tests.access.sole", logging.INFO)
    handler = accesslog.BatchingStderrHandler()
    logger.addHandler(handler)
    logger.propagate = False
    return logger, handler


def _log_one(logger):
    request = make_mocked_request("GET", "/v1/models", headers={"User-Agent": "probe"})
    accesslog.StructuredAccessLogger(logger, "json").log(request, web.Response(status=200), 0.002)


def test_a_sole_handler_gets_the_line_without_a_log_record(sole_logger, monkeypatch):
    """Nothing but the access logger's own handler would see the record: none is made."""
    logger, handler = sole_logger
    monkeypatch.setattr(logger, "makeRecord", lambda *args: pytest.fail("a LogRecord was made"))
    monkeypatch.setattr(handler, "flush", lambda: None)  # keep the batch to read it
    _log_one(logger)
    assert len(handler._lines) == 1
    line = json.loads(handler._lines[0])
    assert line["path"] == "/v1/models" and line["status"] == 200 and line["user_agent"] == "probe"


def test_a_filter_beside_the_sole_handler_still_gets_records(sole_logger, monkeypatch):
    logger, handler = sole_logger
    seen = []
    logger.addFilter(lambda record: seen.append(record.getMessage()) or False)  # drops every line
    monkeypatch.setattr(handler, "flush", lambda: None)
    _log_one(logger)
    assert len(seen) == 1 and '"/v1/models"' in seen[0]
    assert handler._lines == []
