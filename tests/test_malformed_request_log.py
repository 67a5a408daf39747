"""Requests aiohttp's HTTP parser refuses are logged as one WARNING line each, without the
traceback aiohttp logs them with, and rate-limited, so that a client cannot fill the log."""

from __future__ import annotations

import logging
import time

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from fastchat_api import logfilter
from fastchat_api.logfilter import SERVER_LOGGER, MalformedRequestFilter

from .support import MALFORMED, exchange, gateway_process, matching, wait_for_line

REASON = "Invalid character in Content-Length: b'Content-Length: abc'"


class ScriptedBucket:
    """Says yes or no to each line as scripted, in place of the clock-driven token bucket."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)

    def consume(self, key: str | bytes, num_tokens: int = 1) -> bool:
        return self.answers.pop(0)


@pytest.fixture
def filtered():
    """aiohttp's server logger with a filter whose bucket the test scripts."""
    logger = logging.getLogger(SERVER_LOGGER)

    def install(*answers: bool) -> None:
        logger.addFilter(each := MalformedRequestFilter(ScriptedBucket(*answers)))
        installed.append(each)

    installed: list[MalformedRequestFilter] = []
    yield install
    for each in installed:
        logger.removeFilter(each)


async def test_each_malformed_request_is_one_warning_line_until_the_bucket_is_empty(
        client, filtered, caplog):
    filtered(True, False, False, True)
    for _ in range(4):
        assert (await exchange(client, MALFORMED)).status == 400
    records = [r for r in caplog.records if r.name == SERVER_LOGGER]
    assert [r.levelname for r in records] == ["WARNING", "WARNING"]
    assert [r.exc_info for r in records] == [None, None] and "Traceback" not in caplog.text
    first, second = (r.getMessage() for r in records)
    assert first == f"Malformed request from 127.0.0.1 refused with 400: {REASON}"
    assert second == f"{first} (2 more since the last such line not logged)"


def record_of(exc: BaseException, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(SERVER_LOGGER, level, __file__, 1, "Error handling request from %s",
                             ("10.0.0.7",), (type(exc), exc, None))


def test_the_gateways_own_faults_keep_their_level_and_traceback():
    record = record_of(RuntimeError("a bug"))
    assert MalformedRequestFilter(ScriptedBucket()).filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_aiohttps_debug_lines_are_left_alone():
    """aiohttp logs a first request that is not HTTP at all (TLS on the port, a scanner) at DEBUG."""
    record = record_of(BadHttpMessage("Bad method"), logging.DEBUG)
    assert MalformedRequestFilter(ScriptedBucket()).filter(record)
    assert record.levelno == logging.DEBUG and record.exc_info is not None


def test_nothing_is_written_when_warnings_are_off():
    logger = logging.getLogger(SERVER_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        assert not MalformedRequestFilter(ScriptedBucket(True)).filter(record_of(BadHttpMessage("x")))
    finally:
        logger.setLevel(level)


async def test_a_flood_of_malformed_requests_leaves_a_few_lines_in_a_real_process(fake, tmp_path):
    async with gateway_process(tmp_path, controller={"address": fake.address}) as gateway:
        started = time.monotonic()
        for _ in range(40):
            assert (await exchange(gateway, MALFORMED)).status == 400
        seconds = time.monotonic() - started
        await wait_for_line(gateway, "Malformed request from")
    lines = matching(gateway, r"\| aiohttp\.server \|")
    assert lines and all("| WARNING | aiohttp.server | Malformed request from" in line for line in lines)
    assert len(lines) <= logfilter.BURST + logfilter.RATE * seconds + 1
    assert not matching(gateway, "Traceback|ERROR")
    assert len(matching(gateway, r'"status":400')) == 40  # every one still has its access line
