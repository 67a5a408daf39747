"""HTTP on a raw socket: requests carrying bytes no HTTP client library sends (header values
that are not UTF-8, malformed request lines), and answers read as the server wrote them."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

ANSWER_TIMEOUT = 10.0
# A request aiohttp's HTTP parser refuses before any application sees it (a 400 of its own).
MALFORMED = b"GET /health HTTP/1.1\r\nHost: gateway\r\nContent-Length: abc\r\n\r\n"


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
            body: bytes = b"") -> bytes:
    """One request with ``Connection: close`` (and ``Host`` unless given); a path or header
    values given as bytes are sent as they are."""
    headers = {"Host": "gateway"} | (headers or {})
    target = path if isinstance(path, bytes) else path.encode()
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Connection: close"]
    for name, value in headers.items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def exchange(host: str, port: int, data: bytes) -> RawAnswer:
    """Send ``data`` and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        raw = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    return RawAnswer(int(status_line.split()[1]), headers, body)  # type: ignore[arg-type]
