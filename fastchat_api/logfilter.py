"""Malformed requests in the log: one WARNING line each, rate-limited.

aiohttp logs each request its HTTP parser refuses (a broken request line or header, a bad
``Content-Length``...) at ERROR with a traceback, under ``aiohttp.server``, and answers it with
a plain-text 400: a client can fill the log with tracebacks of its own making. This filter turns
those records into one WARNING line without traceback, and lets ``BURST`` of them through at
once and ``RATE`` a second after that (token-bucket's ``Limiter``); the next line that goes
through says how many were left out. Errors of the gateway's own (an exception escaping a
handler) stay ERROR with their traceback.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp.http_exceptions import HttpProcessingError
from token_bucket import Limiter, MemoryStorage

SERVER_LOGGER = "aiohttp.server"
BURST = 10  # lines at once
RATE = 1.0  # lines a second once a burst is spent
MAX_DETAIL = 300  # characters of the parser's reason (it quotes the offending bytes)
_BUCKET = "malformed"


class Bucket(Protocol):
    """What the filter needs of a rate limiter: token_bucket's ``Limiter.consume``."""

    def consume(self, key: str | bytes, num_tokens: int = 1) -> bool: ...


def _reason(exc: HttpProcessingError) -> str:
    """The parser's reason on one line, without the lines that point at the offending byte."""
    lines = (line.strip() for line in str(exc.message).splitlines())
    return " ".join(line for line in lines if line.strip("^~ "))[:MAX_DETAIL]


class MalformedRequestFilter(logging.Filter):
    """On ``aiohttp.server``: its ERROR records of requests the HTTP parser refused become one
    WARNING line each (``Malformed request from <address> refused with 400: <reason>``), at
    most ``BURST`` at once and ``RATE`` a second; other records pass untouched."""

    def __init__(self, bucket: Bucket | None = None) -> None:
        super().__init__()
        self._bucket = bucket or Limiter(RATE, BURST, MemoryStorage())
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.ERROR or not isinstance(exc, HttpProcessingError):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.WARNING):
            return False
        if not self._bucket.consume(_BUCKET):
            self._left_out += 1
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "a client"
        record.msg = f"Malformed request from {remote} refused with {exc.code}: {_reason(exc)}"
        if self._left_out:
            record.msg += f" ({self._left_out} more since the last such line not logged)"
        record.args, record.exc_info, record.exc_text = (), None, None
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        self._left_out = 0
        return True


def setup_malformed_request_log() -> None:
    """Put the filter on aiohttp's server logger, once per process."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(each, MalformedRequestFilter) for each in logger.filters):
        logger.addFilter(MalformedRequestFilter())
