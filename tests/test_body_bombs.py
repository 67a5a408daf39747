"""Compressed-body bombs against the gateway as a real process, both ways production runs it
(``python -m fastchat_api``, and gunicorn with ``app_factory``): while small gzip bodies that
inflate to 128 MB arrive, with a key and without, the event loop stays free: ``/health``
answers within 50 ms (issue 18, item 1)."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import time
import zlib
from pathlib import Path

import aiohttp
import pytest

from .test_bodies import head, read_response

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
KEY = "sk-bombs"
BOMB_SIZE = 128 * 1024 * 1024  # inflated; aiohttp's parser took about half a second for it
ROUNDS, SENDERS = 4, 2  # a few bombs, one with a key and one without at a time
HEALTH_LIMIT = 0.05  # seconds


@functools.cache
def bomb() -> bytes:
    """``BOMB_SIZE`` zero bytes in gzip: about 130 kB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(BOMB_SIZE // len(block))) + packer.flush()


async def start_gateway(tmp_path: Path, port: int, how: str) -> asyncio.subprocess.Process:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"server:\n  host: 127.0.0.1\n  port: {port}\n"
        "controller:\n  address: http://127.0.0.1:9\n"  # never asked: no bomb gets that far
        f"auth:\n  api_keys: [{KEY}]\n"
        "logging:\n  access_format: 'off'\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"PYTHONPATH": str(ROOT), "FASTCHAT_API_CONFIG": str(config), "WEB_CONCURRENCY": "1",
            "XDG_RUNTIME_DIR": str(tmp_path)}  # gunicorn's control socket
    command = {
        "python -m": [sys.executable, "-m", "fastchat_api", "--config", str(config)],
        "gunicorn": [str(GUNICORN), "-c", "config/gunicorn.conf.py"],
    }[how]
    return await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env,
                                                stderr=asyncio.subprocess.DEVNULL)


async def wait_until_serving(session: aiohttp.ClientSession, url: str, proc) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.returncode is None, "the gateway exited during start-up"
        try:
            async with session.get(f"{url}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not serve /health within 30 s")


async def send_bomb(port: int, key: str | None) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head(len(bomb()), key=key, Content_Encoding="gzip") + bomb())
        await writer.drain()
        return (await read_response(reader))[0]
    finally:
        writer.close()


@pytest.mark.parametrize("how", ["python -m", "gunicorn"])
async def test_health_answers_within_50_ms_while_gzip_bombs_arrive(tmp_path, unused_tcp_port, how):
    bomb()  # built before the clock matters
    url = f"http://127.0.0.1:{unused_tcp_port}"
    proc = await start_gateway(tmp_path, unused_tcp_port, how)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_serving(session, url, proc)
            latencies: list[float] = []
            statuses: list[int] = []

            async def bombard() -> None:
                for _ in range(ROUNDS):
                    keys = [KEY, None] * (SENDERS // 2)
                    statuses.extend(await asyncio.gather(*(send_bomb(unused_tcp_port, key) for key in keys)))

            bombs = asyncio.create_task(bombard())
            while not bombs.done():
                started = time.perf_counter()
                async with session.get(f"{url}/health") as resp:
                    assert resp.status == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)
            await bombs
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert sorted(statuses) == [401] * (ROUNDS * SENDERS // 2) + [413] * (ROUNDS * SENDERS // 2)
    assert len(latencies) >= 3, "the bombs were answered before /health was asked"
    assert max(latencies) < HEALTH_LIMIT, sorted(latencies)[-5:]
