"""The access log: one structured line per request, as JSON or logfmt, for log pipelines.

aiohttp calls the logger once a response is over (a stream when its last event is written).
Lines carry what the request's record holds (``record.py``): its id, the key's identity
(never the key), the model and the tokens, beside status and duration. Fields without a value
are left out. Text a client sent that is not UTF-8 is written with the odd bytes escaped
(``\\xff``), so that no request is left out of the log for the bytes it carried.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .jsonutil import dumps
from .keys import raw_bytes
from .record import RequestRecord, names_text, record_key

logger = logging.getLogger("fastchat_api.access")

_LOGFMT_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+,")


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and all(char in _LOGFMT_PLAIN for char in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def logfmt(fields: dict[str, Any]) -> str:
    """``key=value`` pairs, values quoted when they hold anything but plain characters."""
    return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())


def json_line(fields: dict[str, Any]) -> str:
    return dumps(fields).decode()


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {"json": json_line, "logfmt": logfmt}


def _escaped(value: Any) -> Any:
    """Text that any line format can carry: the bytes of a header or path that were not UTF-8
    (which aiohttp passes on as lone surrogates, see ``keys.raw_bytes``) as ``\\xNN``."""
    if isinstance(value, str) and not value.isascii():
        return raw_bytes(value).decode("utf-8", "backslashreplace")
    return value


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class StructuredAccessLogger(AbstractAccessLogger):
    """aiohttp's access logger, with ``access_log_format`` naming the line format."""

    __slots__ = ("_render", "_pid")

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._render = RENDERERS[log_format]
        self._pid = os.getpid()  # built in the serving process, after gunicorn's fork

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        record = request.get(record_key) or RequestRecord()
        usage = record.usage or {}
        fields = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "pid": self._pid,
            "request_id": record.request_id,
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": _ms(time),
            "ttft_ms": _ms(record.first_token),
            "key": record.key_id,
            "model": record.model,
            "user": record.user,
            "ignored": names_text(record.ignored) or None,
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "user_agent": request.headers.get("User-Agent"),
        }
        line = self._render({k: _escaped(v) for k, v in fields.items() if v is not None})
        sink = _sole_sink(self.logger)
        if sink is not None:
            sink.add(line)
            return
        # aiohttp asked ``enabled`` first; ``info()`` would also look for the caller's frame
        # (a third of the cost of logging), which no access line shows.
        self.logger.handle(self.logger.makeRecord(self.logger.name, logging.INFO, "", 0, line, (), None))


class BatchingStderrHandler(logging.Handler):
    """Writes the lines of the last ``FLUSH_DELAY`` seconds to stderr together: one system
    call per batch rather than one per request, which is a measurable share of a request."""

    FLUSH_DELAY = 0.05

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        self.add(record.getMessage())

    def add(self, line: str) -> None:
        """One line for the next batch."""
        self._lines.append(line)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (start-up, shutdown): write at once
            self.flush()
            return
        self._scheduled = True
        loop.call_later(self.FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._lines:
            lines, self._lines = self._lines, []
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()


def _sole_sink(logger: logging.Logger) -> BatchingStderrHandler | None:
    """The access logger's own handler when nothing else could see a line (no other handler,
    no filter, no propagation, as :func:`setup_access_log` leaves it): the line then goes
    straight to it, without the ``LogRecord`` that would be made and dropped (about a third
    of an access line's cost). None when an operator added handlers or filters: they get
    records."""
    handlers = logger.handlers
    if len(handlers) != 1 or logger.filters or logger.propagate:
        return None
    handler = handlers[0]
    if type(handler) is BatchingStderrHandler and not handler.filters and handler.level <= logging.INFO:
        return handler
    return None


def setup_access_log() -> None:
    """Access lines go to stderr bare (no prefix, so each is one JSON document or logfmt
    record), whatever level the other logs are at."""
    if logger.handlers:
        return
    logger.addHandler(BatchingStderrHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def runner_options(access_format: str) -> dict[str, Any]:
    """The ``AppRunner`` arguments that turn the access log on in a format, or off."""
    if access_format == "off":
        return {"access_log": None}
    return {"access_log_class": StructuredAccessLogger, "access_log": logger,
            "access_log_format": access_format}
