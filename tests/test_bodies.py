"""Request bodies on the wire (``fastchat_api.bodies``): compressed bodies inflated within
bounds, ``Expect: 100-continue`` answered after the key and size checks, slow bodies timed out,
the process's budget of body bytes, and JSON in UTF-8 with a BOM, UTF-16 or UTF-32.

Most tests write the HTTP bytes themselves on a socket to the test server, which runs with
the runner options of production (``auto_decompress=False``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib

import pytest

from fastchat_api import schemas
from fastchat_api.config import ConfigError, build_config
from fastchat_api.typedefs import body_budget_key

KEY = "sk-bodies"
KEYS = {"api_keys": [KEY]}
CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}]}
CHAT_BYTES = json.dumps(CHAT).encode()
ANSWER_TIMEOUT = 5  # seconds; a test fails rather than hangs when the server never answers


def head(body_length: int | None = None, key: str | None = KEY, path: str = "/v1/chat/completions",
         **headers: str) -> bytes:
    """The request line and headers of a JSON POST (``Content_Encoding`` for ``Content-Encoding``)."""
    lines = [f"POST {path} HTTP/1.1", "Host: gateway", "Content-Type: application/json"]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of the next response on the connection."""
    async with asyncio.timeout(ANSWER_TIMEOUT):
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        body = await reader.readexactly(int(headers.get("content-length", 0)))
    return int(status_line.split()[1]), headers, body


class Raw:
    """A connection to the test server on which the test writes the bytes itself."""

    def __init__(self, client) -> None:
        self.client = client

    async def __aenter__(self) -> Raw:
        self.reader, self.writer = await asyncio.open_connection(self.client.host, self.client.port)
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.writer.close()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        return await read_response(self.reader)


async def exchange(client, data: bytes) -> tuple[int, dict[str, str], dict]:
    """Send one request's bytes on a new connection; its status, headers and JSON body."""
    async with Raw(client) as raw:
        await raw.send(data)
        status, headers, body = await raw.answer()
    return status, headers, json.loads(body)


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.fixture
async def keyed(make_client):
    return await make_client(auth=KEYS)


# -- (1) Content-Encoding: inflated here, bounded, in the codings aiohttp took ------------------


@pytest.mark.parametrize(("coding", "pack"), [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("GZIP", gzip.compress),
    ("deflate", zlib.compress), ("deflate", raw_deflate), ("identity", lambda data: data),
    ("identity, gzip", gzip.compress),
])
async def test_gzip_and_deflate_bodies_are_inflated(keyed, coding, pack):
    body = pack(CHAT_BYTES)
    status, _, answer = await exchange(keyed, head(len(body), Content_Encoding=coding) + body)
    assert status == 200, answer
    assert answer["object"] == "chat.completion"


async def test_a_bomb_is_413_where_it_crosses_client_max_size_and_inflated_no_further(make_client, monkeypatch):
    client = await make_client(auth=KEYS, server={"client_max_size": 1_000_000})
    inflated = []
    real = zlib.decompressobj

    class Counting:
        """zlib's inflater, counting what it gives out."""

        def __init__(self, wbits: int) -> None:
            self.inner = real(wbits)

        def decompress(self, data, max_length=0):
            piece = self.inner.decompress(data, max_length)
            inflated.append(len(piece))
            return piece

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    bomb = gzip.compress(bytes(100_000_000))  # 100 MB of zeros in 97 kB
    status, headers, answer = await exchange(client, head(len(bomb), Content_Encoding="gzip") + bomb)
    assert status == 413
    assert answer["error"]["code"] == "request_too_large"
    assert "1000000 bytes" in answer["error"]["message"]
    assert 1_000_000 < sum(inflated) <= 1_000_001  # one byte past the limit, and not one more


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip", "deflate, br"])
async def test_a_coding_that_cannot_be_undone_is_415_naming_it(keyed, coding):
    body = b"\x1f\x8b\x00garbage"
    status, headers, answer = await exchange(keyed, head(len(body), Content_Encoding=coding) + body)
    assert status == 415
    assert answer["error"]["code"] == "unsupported_content_encoding"
    assert repr(coding) in answer["error"]["message"]
    assert headers["accept-encoding"] == "gzip, deflate"


async def test_an_unregistered_coding_is_ignored_as_fastchat_ignores_it(keyed):
    """``Content-Encoding: utf-8`` (a charset where a coding belongs) on a plain body: FastChat
    reads the body as it is, and so did aiohttp's parser."""
    status, _, answer = await exchange(keyed, head(len(CHAT_BYTES), Content_Encoding="utf-8") + CHAT_BYTES)
    assert status == 200, answer


@pytest.mark.parametrize(("coding", "body", "reason"), [
    ("gzip", gzip.compress(CHAT_BYTES)[:-12], "ends before"),
    ("gzip", gzip.compress(CHAT_BYTES) + b"tail", "bytes follow"),
    ("deflate", b"\x78\x9c" + b"\xff" * 20, "invalid"),
    ("gzip", b"", "ends before"),
])
async def test_a_body_not_in_its_coding_is_400_invalid_body(keyed, coding, body, reason):
    status, _, answer = await exchange(keyed, head(len(body), Content_Encoding=coding) + body)
    assert status == 400
    assert answer["error"]["code"] == "invalid_body"
    assert reason in answer["error"]["message"]


async def test_a_chunked_gzip_body_is_inflated(keyed):
    body = gzip.compress(CHAT_BYTES)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    status, _, answer = await exchange(keyed, head(Transfer_Encoding="chunked", Content_Encoding="gzip") + chunks)
    assert status == 200, answer


# -- (9) Expect: 100-continue after the key and the size are checked --------------------------


@pytest.mark.parametrize(("key", "length", "status", "code"), [
    (None, 100, 401, "invalid_api_key"),
    ("sk-wrong", 100, 401, "invalid_api_key"),
    (KEY, 10**9, 413, "request_too_large"),
])
async def test_expect_100_continue_is_refused_at_once_without_the_body(keyed, key, length, status, code):
    async with Raw(keyed) as raw:
        await raw.send(head(length, key=key, Expect="100-continue"))
        answer_status, headers, body = await raw.answer()  # the body is never sent
    assert answer_status == status
    assert json.loads(body)["error"]["code"] == code
    assert headers["connection"] == "close"  # the unsent body is not waited for on this connection


async def test_expect_100_continue_gets_100_once_the_key_is_good_then_the_answer(keyed):
    async with Raw(keyed) as raw:
        await raw.send(head(len(CHAT_BYTES), Expect="100-continue"))
        assert (await raw.answer())[0] == 100
        await raw.send(CHAT_BYTES)
        status, headers, body = await raw.answer()
    assert status == 200, body
    assert headers.get("connection") != "close"


async def test_an_unknown_expectation_is_417_in_the_error_format(keyed):
    status, _, answer = await exchange(keyed, head(len(CHAT_BYTES), Expect="teapot") + CHAT_BYTES)
    assert status == 417
    assert answer["error"]["code"] == "expectation_failed"
    assert "teapot" in answer["error"]["message"]


# -- (8) the body read timeout ------------------------------------------------------------------


async def test_a_body_that_never_comes_is_408_and_the_connection_closes(make_client):
    client = await make_client(auth=KEYS, server={"body_read_timeout": 0.3})
    async with Raw(client) as raw:
        await raw.send(head(len(CHAT_BYTES)) + CHAT_BYTES[:5])
        status, headers, body = await raw.answer()
    assert status == 408
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert headers["connection"] == "close"


async def test_a_body_trickling_a_byte_at_a_time_is_408_too(make_client):
    client = await make_client(auth=KEYS, server={"body_read_timeout": 0.5})
    async with Raw(client) as raw:
        await raw.send(head(len(CHAT_BYTES)))

        async def trickle() -> None:
            for byte in CHAT_BYTES:
                await raw.send(bytes([byte]))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        try:
            status, _, body = await raw.answer()
        finally:
            sender.cancel()
    assert status == 408, body


# -- (7) the bytes of bodies held at once --------------------------------------------------------


def padded_chat(size: int) -> bytes:
    """A valid chat body of exactly ``size`` bytes."""
    body = json.dumps(CHAT | {"messages": "x"}).encode()
    return body.replace(b'"x"', b'"' + b"x" * (size - len(body) + 1) + b'"')


async def held(client) -> int:
    """The budget's count once the server has had a moment to take or give back."""
    await asyncio.sleep(0.05)
    return client.server.app[body_budget_key].held


async def test_bodies_past_the_budget_are_503_with_retry_after_until_room_is_given_back(make_client):
    client = await make_client(auth=KEYS, server={"client_max_size": 60_000, "max_body_memory": 90_000})
    body = padded_chat(50_000)
    async with Raw(client) as first, Raw(client) as second:
        await first.send(head(len(body)) + body[:100])
        assert await held(client) == 50_000
        # The second's declared length does not fit: refused before its body (and any 100).
        await second.send(head(len(body), Expect="100-continue"))
        status, headers, answer = await second.answer()
        assert status == 503 and headers["retry-after"] == "1"
        assert json.loads(answer)["error"]["code"] == "server_busy"
        # Inflated bytes count as they come out: a small gzip body that inflates past it.
        async with Raw(client) as third:
            packed = gzip.compress(body)
            await third.send(head(len(packed), Content_Encoding="gzip") + packed)
            assert (await third.answer())[0] == 503
        await first.send(body[100:])
        assert (await first.answer())[0] == 200
    assert await held(client) == 0
    status, _, answer = await exchange(client, head(len(body)) + body)
    assert status == 200, answer


def test_the_budget_must_hold_one_largest_body():
    with pytest.raises(ConfigError, match="server.max_body_memory: Must be at least server.client_max_size"):
        build_config({"server": {"client_max_size": 1000, "max_body_memory": 999}})


async def test_every_byte_taken_is_given_back_however_the_request_ends(make_client):
    client = await make_client(auth=KEYS, server={"client_max_size": 10_000, "body_read_timeout": 0.3})
    bomb = gzip.compress(bytes(100_000))
    for data in (
        head(len(CHAT_BYTES)) + CHAT_BYTES,  # answered
        head(len(bomb), Content_Encoding="gzip") + bomb,  # 413 while inflating
        head(4) + b"{no}",  # 400
        head(len(CHAT_BYTES)) + CHAT_BYTES[:5],  # 408
    ):
        await exchange(client, data)
    async with Raw(client) as gone:  # a client that hangs up halfway
        await gone.send(head(len(CHAT_BYTES)) + CHAT_BYTES[:5])
        assert await held(client) == len(CHAT_BYTES)
    assert await held(client) == 0


async def test_a_body_is_held_once_while_its_request_is_handled(keyed, monkeypatch):
    """Once parsed, the bytes as received are gone: a request holds its body once (as parsed
    objects), not also as the bytes aiohttp's ``request.read()`` used to keep."""
    at_validation = []
    load = schemas.load

    def measuring_load(schema, data, **options):
        at_validation.append(tracemalloc.get_traced_memory()[0])
        return load(schema, data, **options)

    monkeypatch.setattr(schemas, "load", measuring_load)
    body = padded_chat(8_000_000).replace(b"fake-model", b"gone-model")  # answered after validation
    async with Raw(keyed) as raw:
        tracemalloc.start()
        try:
            await raw.send(head(len(body)) + body)
            del body
            status, _, _ = await raw.answer()
        finally:
            tracemalloc.stop()
    assert status == 404
    assert at_validation[0] < 1.3 * 8_000_000


# -- (12) JSON in UTF-8 with a BOM, UTF-16 and UTF-32 --------------------------------------------

TEXT = json.dumps(CHAT | {"messages": [{"role": "user", "content": "Grüße 👋"}]})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-32-be"])
async def test_a_bom_or_utf16_or_utf32_body_is_read_as_fastchat_reads_it(keyed, fake, encoding):
    body = TEXT.encode(encoding)
    status, _, answer = await exchange(keyed, head(len(body)) + body)
    assert status == 200, answer
    assert "Grüße 👋" in fake.sent("/worker_generate")[-1]["prompt"]


@pytest.mark.parametrize(("body", "named"), [
    ("{}".encode("utf-16-le") + b"\x00", "UTF-16-LE"),  # an odd number of bytes
    (b"\xff\xfe" + "{\ud800}".encode("utf-16-le", "surrogatepass"), "UTF-16"),  # a lone surrogate
    ('{"a": 1}'.encode("utf-32-be")[:-1], "UTF-32-BE"),
])
async def test_a_body_not_valid_in_the_encoding_it_looks_like_is_400_naming_it(keyed, body, named):
    status, _, answer = await exchange(keyed, head(len(body)) + body)
    assert status == 400
    assert answer["error"]["code"] == "invalid_json"
    assert f"looks like {named} JSON" in answer["error"]["message"]
    assert "Send it in UTF-8" in answer["error"]["message"]
