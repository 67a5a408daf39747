"""The gateway as a real process (``python -m fastchat_api``), for what only a process shows: its
start-up, its logs on stderr, and aiohttp's own answers outside any application hook."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import AsyncIterator, Callable

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0


async def until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` to hold, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)


async def wait_until_serving(url: str, proc: asyncio.subprocess.Process) -> None:
    """Until ``GET /health`` answers 200 at ``url``; fails if ``proc`` exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "the gateway exited during start-up"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/health") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the gateway did not serve {url}/health within {START_TIMEOUT} s")


class GatewayProcess:
    """A running gateway, with every line it wrote to stderr so far."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.host, self.port = "127.0.0.1", port
        self.url = f"http://{self.host}:{port}"
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode("utf-8", "backslashreplace").rstrip("\n"))

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.lines if re.search(pattern, line)]

    async def wait_for_line(self, pattern: str, timeout: float = 10.0) -> str:
        """The first stderr line matching ``pattern``, waiting up to ``timeout`` seconds for it."""
        await until(lambda: self.matching(pattern), f"a line matching {pattern!r}", timeout)
        return self.matching(pattern)[0]

    async def wait_until_serving(self) -> None:
        await wait_until_serving(self.url, self.proc)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(self.proc.wait(), 30)
        await self._reader
        return returncode


@contextlib.asynccontextmanager
async def gateway_process(config: Path, port: int, *args: str,
                          env: dict[str, str] | None = None) -> AsyncIterator[GatewayProcess]:
    """``python -m fastchat_api --config <config> --port <port>``, serving until the block ends,
    with ``env`` added to the environment."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fastchat_api", "--config", str(config), "--port", str(port), *args,
        env=os.environ | {"PYTHONPATH": str(ROOT)} | (env or {}), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    gateway = GatewayProcess(proc, port)
    try:
        yield gateway
    finally:
        await gateway.stop()
