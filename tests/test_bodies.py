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

from .support import CHAT, CHAT_BYTES, connect, exchange, request, until

KEY = "sk-bodies"
KEYS = {"api_keys": [KEY]}


def head(body_length: int | None = None, key: str | None = KEY, **headers: str) -> bytes:
    """The request line and headers of a JSON chat POST on a connection kept open
    (``Content_Encoding`` for ``Content-Encoding``)."""
    fields = {"Content-Type": "application/json"}
    if key is not None:
        fields["Authorization"] = f"Bearer {key}"
    if body_length is not None:
        fields["Content-Length"] = str(body_length)
    fields |= {name.replace("_", "-"): value for name, value in headers.items()}
    return request("POST", "/v1/chat/completions", fields, close=False)


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
    answer = await exchange(keyed, head(len(body), Content_Encoding=coding) + body)
    assert answer.status == 200, answer.body
    assert answer.json()["object"] == "chat.completion"


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
    answer = await exchange(client, head(len(bomb), Content_Encoding="gzip") + bomb)
    assert answer.status == 413
    assert answer.json()["error"]["code"] == "request_too_large"
    assert "1000000 bytes" in answer.json()["error"]["message"]
    assert 1_000_000 < sum(inflated) <= 1_000_001  # one byte past the limit, and not one more


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip", "deflate, br"])
async def test_a_coding_that_cannot_be_undone_is_415_naming_it(keyed, coding):
    body = b"\x1f\x8b\x00garbage"
    answer = await exchange(keyed, head(len(body), Content_Encoding=coding) + body)
    assert answer.status == 415
    assert answer.json()["error"]["code"] == "unsupported_content_encoding"
    assert repr(coding) in answer.json()["error"]["message"]
    assert answer.header("Accept-Encoding") == "gzip, deflate"


async def test_an_unregistered_coding_is_ignored_as_fastchat_ignores_it(keyed):
    """``Content-Encoding: utf-8`` (a charset where a coding belongs) on a plain body: FastChat
    reads the body as it is, and so did aiohttp's parser."""
    answer = await exchange(keyed, head(len(CHAT_BYTES), Content_Encoding="utf-8") + CHAT_BYTES)
    assert answer.status == 200, answer.body


@pytest.mark.parametrize(("coding", "body", "reason"), [
    ("gzip", gzip.compress(CHAT_BYTES)[:-12], "ends before"),
    ("gzip", gzip.compress(CHAT_BYTES) + b"tail", "bytes follow"),
    ("deflate", b"\x78\x9c" + b"\xff" * 20, "invalid"),
    ("gzip", b"", "ends before"),
])
async def test_a_body_not_in_its_coding_is_400_invalid_body(keyed, coding, body, reason):
    answer = await exchange(keyed, head(len(body), Content_Encoding=coding) + body)
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "invalid_body"
    assert reason in answer.json()["error"]["message"]


async def test_a_chunked_gzip_body_is_inflated(keyed):
    body = gzip.compress(CHAT_BYTES)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    answer = await exchange(keyed, head(Transfer_Encoding="chunked", Content_Encoding="gzip") + chunks)
    assert answer.status == 200, answer.body


# -- (9) Expect: 100-continue after the key and the size are checked --------------------------


@pytest.mark.parametrize(("key", "length", "status", "code"), [
    (None, 100, 401, "invalid_api_key"),
    ("sk-wrong", 100, 401, "invalid_api_key"),
    (KEY, 10**9, 413, "request_too_large"),
])
async def test_expect_100_continue_is_refused_at_once_without_the_body(keyed, key, length, status, code):
    async with connect(keyed) as raw:
        await raw.send(head(length, key=key, Expect="100-continue"))
        answer = await raw.answer()  # the body is never sent
    assert answer.status == status
    assert answer.json()["error"]["code"] == code
    assert answer.header("Connection") == "close"  # the unsent body is not waited for on this connection


async def test_expect_100_continue_gets_100_once_the_key_is_good_then_the_answer(keyed):
    async with connect(keyed) as raw:
        await raw.send(head(len(CHAT_BYTES), Expect="100-continue"))
        assert (await raw.answer()).status == 100
        await raw.send(CHAT_BYTES)
        answer = await raw.answer()
    assert answer.status == 200, answer.body
    assert answer.header("Connection") != "close"


async def test_an_unknown_expectation_is_417_in_the_error_format(keyed):
    answer = await exchange(keyed, head(len(CHAT_BYTES), Expect="teapot") + CHAT_BYTES)
    assert answer.status == 417
    assert answer.json()["error"]["code"] == "expectation_failed"
    assert "teapot" in answer.json()["error"]["message"]


# -- (8) the body read timeout ------------------------------------------------------------------


async def test_a_body_that_never_comes_is_408_and_the_connection_closes(make_client):
    client = await make_client(auth=KEYS, server={"body_read_timeout": 0.3})
    async with connect(client) as raw:
        await raw.send(head(len(CHAT_BYTES)) + CHAT_BYTES[:5])
        answer = await raw.answer()
    assert answer.status == 408
    assert answer.json()["error"]["code"] == "request_timeout"
    assert answer.header("Connection") == "close"


async def test_a_body_trickling_a_byte_at_a_time_is_408_too(make_client):
    client = await make_client(auth=KEYS, server={"body_read_timeout": 0.5})
    async with connect(client) as raw:
        await raw.send(head(len(CHAT_BYTES)))

        async def trickle() -> None:
            for byte in CHAT_BYTES:
                await raw.send(bytes([byte]))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        try:
            answer = await raw.answer()
        finally:
            sender.cancel()
    assert answer.status == 408, answer.body


# -- (7) the bytes of bodies held at once --------------------------------------------------------


def padded_chat(size: int) -> bytes:
    """A valid chat body of exactly ``size`` bytes."""
    body = json.dumps(CHAT | {"messages": "x"}).encode()
    return body.replace(b'"x"', b'"' + b"x" * (size - len(body) + 1) + b'"')


def held(client) -> int:
    """The bytes of bodies the budget counts as held."""
    return client.server.app[body_budget_key].held


async def test_bodies_past_the_budget_are_503_with_retry_after_until_room_is_given_back(make_client):
    client = await make_client(auth=KEYS, server={"client_max_size": 60_000, "max_body_memory": 90_000})
    body = padded_chat(50_000)
    async with connect(client) as first, connect(client) as second:
        await first.send(head(len(body)) + body[:100])
        await until(lambda: held(client) == 50_000, "the bytes held")
        # The second's declared length does not fit: refused before its body (and any 100).
        await second.send(head(len(body), Expect="100-continue"))
        answer = await second.answer()
        assert answer.status == 503 and answer.header("Retry-After") == "1"
        assert answer.json()["error"]["code"] == "server_busy"
        # Inflated bytes count as they come out: a small gzip body that inflates past it.
        async with connect(client) as third:
            packed = gzip.compress(body)
            await third.send(head(len(packed), Content_Encoding="gzip") + packed)
            assert (await third.answer()).status == 503
        await first.send(body[100:])
        assert (await first.answer()).status == 200
    await until(lambda: held(client) == 0, "the bytes held")
    answer = await exchange(client, head(len(body)) + body)
    assert answer.status == 200, answer.body


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
        (await exchange(client, data)).json()  # each answered, in JSON
    async with connect(client) as gone:  # a client that hangs up halfway
        await gone.send(head(len(CHAT_BYTES)) + CHAT_BYTES[:5])
        await until(lambda: held(client) == len(CHAT_BYTES), "the bytes held")
    await until(lambda: held(client) == 0, "the bytes held")


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
    async with connect(keyed) as raw:
        tracemalloc.start()
        try:
            await raw.send(head(len(body)) + body)
            del body
            answer = await raw.answer()
        finally:
            tracemalloc.stop()
    assert answer.status == 404
    assert at_validation[0] < 1.3 * 8_000_000


# -- (12) JSON in UTF-8 with a BOM, UTF-16 and UTF-32 --------------------------------------------

TEXT = json.dumps(CHAT | {"messages": [{"role": "user", "content": "Grüße 👋"}]})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-32-be"])
async def test_a_bom_or_utf16_or_utf32_body_is_read_as_fastchat_reads_it(keyed, fake, encoding):
    body = TEXT.encode(encoding)
    answer = await exchange(keyed, head(len(body)) + body)
    assert answer.status == 200, answer.body
    assert "Grüße 👋" in fake.sent("/worker_generate")[-1]["prompt"]


@pytest.mark.parametrize(("body", "named"), [
    ("{}".encode("utf-16-le") + b"\x00", "UTF-16-LE"),  # an odd number of bytes
    (b"\xff\xfe" + "{\ud800}".encode("utf-16-le", "surrogatepass"), "UTF-16"),  # a lone surrogate
    ('{"a": 1}'.encode("utf-32-be")[:-1], "UTF-32-BE"),
])
async def test_a_body_not_valid_in_the_encoding_it_looks_like_is_400_naming_it(keyed, body, named):
    answer = await exchange(keyed, head(len(body)) + body)
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "invalid_json"
    assert f"looks like {named} JSON" in answer.json()["error"]["message"]
    assert "Send it in UTF-8" in answer.json()["error"]["message"]
