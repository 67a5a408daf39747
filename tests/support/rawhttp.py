"""HTTP on a raw socket, the one client the tests write bytes with: requests no HTTP client
library sends (header values that are not UTF-8, malformed request lines, bodies cut short or
sent a byte at a time, ``Expect: 100-continue``), and answers read as the server wrote them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator, Protocol

ANSWER_TIMEOUT = 10.0  # seconds; a test fails rather than hangs when the server never answers
# A request aiohttp's HTTP parser refuses before any application sees it (a 400 of its own).
MALFORMED = b"GET /health HTTP/1.1\r\nHost: gateway\r\nContent-Length: abc\r\n\r\n"


class Server(Protocol):
    """Where a server listens: aiohttp's test client and server, a gateway process."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int | None: ...


@dataclass
class RawAnswer:
    """An answer as it came off the wire: status, header lines in order, the body undecoded."""

    status: int
    headers: list[tuple[str, str]]  # (name, value), decoded as latin-1 so every byte shows
    body: bytes

    def values(self, name: str) -> list[str]:
        """The values of every header line called ``name`` (case-insensitive)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None

    def json(self) -> Any:
        return json.loads(self.body)


def request(method: str, path: str | bytes, headers: dict[str, str | bytes] | None = None,
            body: bytes = b"", *, close: bool = True) -> bytes:
    """One request's bytes: ``Host`` unless given, ``Connection: close`` unless ``close`` is
    false, and ``Content-Length`` of ``body`` unless given (a head alone, whose body the test
    sends later or never, gives its own). A path or header values given as bytes go as they are."""
    headers = {"Host": "gateway"} | (headers or {})
    if close:
        headers["Connection"] = "close"
    if body and not any(name.lower() == "content-length" for name in headers):
        headers["Content-Length"] = str(len(body))
    target = path if isinstance(path, bytes) else path.encode()
    lines = [method.encode() + b" " + target + b" HTTP/1.1"]
    for name, value in headers.items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer:
    """The next answer on a connection: its body by ``Content-Length``, else to the close
    (none for 1xx, 204 and 304). Fails after ``ANSWER_TIMEOUT`` seconds."""
    async with asyncio.timeout(ANSWER_TIMEOUT):
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1").split("\r\n")
        headers = [(name, value.strip(" \t")) for name, _, value in (line.partition(":") for line in lines)]
        answer = RawAnswer(int(status_line.split()[1]), headers, b"")
        length = answer.header("Content-Length")
        if answer.status < 200 or answer.status in (204, 304):
            return answer
        answer.body = await (reader.read() if length is None else reader.readexactly(int(length)))
    return answer


class Connection:
    """One connection, on which the test writes the bytes itself and reads answers in turn."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> RawAnswer:
        return await read_answer(self.reader)

    async def close(self) -> None:
        """Hang up (again: nothing)."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def connect(server: Server) -> AsyncIterator[Connection]:
    """A connection to ``server``, closed when the block ends."""
    connection = Connection(*await asyncio.open_connection(server.host, server.port))
    try:
        yield connection
    finally:
        await connection.close()


async def exchange(server: Server, data: bytes) -> RawAnswer:
    """Send ``data`` on a new connection to ``server``; the answer."""
    async with connect(server) as connection:
        await connection.send(data)
        return await connection.answer()
