"""Soak: 1,000 concurrent streams from a slow worker stand-in through our server as a real
process. Every stream completes, and afterwards the server holds no more file descriptors or
connections than before, and counts nothing in flight."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import resource
import time
from typing import Any

import aiohttp
import pytest

from ..support import STANDIN_MODEL, read_events, standin_requests, streamed_text, until

pytestmark = pytest.mark.integration

STREAMS = 1000
PIECES, DELAY = 10, 0.4  # 4.4 s per stream, so that all are open at once
TCP_STATES = {"01": "ESTABLISHED", "08": "CLOSE_WAIT", "0A": "LISTEN"}


@pytest.fixture
def enough_fds():
    """Room for two sockets per stream in the server (and one in this process and in the
    stand-in); set before the processes start, which inherit it."""
    need = 3 * STREAMS + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs {need} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def descriptors(pid: int) -> list[str]:
    """What each open file descriptor of ``pid`` is (``socket:[inode]``, a path, ...)."""
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:  # closed meanwhile
            pass
    return names


def sockets(pid: int) -> collections.Counter:
    """The states (ESTABLISHED, CLOSE_WAIT, LISTEN, ...) of the TCP sockets ``pid`` holds."""
    inodes = {m.group(1) for m in map(re.compile(r"socket:\[(\d+)\]").match, descriptors(pid)) if m}
    states: collections.Counter = collections.Counter()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    states[TCP_STATES.get(fields[3], fields[3])] += 1
    return states


async def settled(pid: int, limit: float, fds: int | None = None) -> tuple[int, collections.Counter]:
    """Wait (up to ``limit`` s) until ``pid`` holds no connection but its listening socket (and
    at most ``fds`` descriptors); its descriptor count and socket states then."""

    def closed() -> bool:
        return set(sockets(pid)) == {"LISTEN"} and (fds is None or len(descriptors(pid)) <= fds)

    await until(closed, lambda: f"{len(descriptors(pid))} descriptors, {dict(sockets(pid))}",
                timeout=limit, every=0.2)
    return len(descriptors(pid)), sockets(pid)


async def stream(session: aiohttp.ClientSession, url: str) -> str:
    """One chat stream, read to the end: its text, checked to be whole."""
    async with session.post(f"{url}/v1/chat/completions", json={
            "model": STANDIN_MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}) as resp:
        assert resp.status == 200
        chunks = await read_events(resp)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    return streamed_text(chunks)


def most_at_once(spans: list[dict[str, Any]]) -> int:
    """The most requests the stand-in had open at the same time."""
    edges = sorted([(r["started"], 1) for r in spans] + [(r["ended"], -1) for r in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_1000_concurrent_streams_complete_and_leave_nothing_behind(enough_fds, rig):
    standin = rig.standin(pieces=PIECES, delay=DELAY)
    gateway = rig.gateway(standin.url, upstream={"keepalive_timeout": 1.0})
    async with aiohttp.ClientSession() as session:  # caches filled: model list, template
        await stream(session, gateway.url)
    before, _ = await settled(gateway.pid, 10)

    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(60)) as session:
        texts = await asyncio.wait_for(
            asyncio.gather(*(stream(session, gateway.url) for _ in range(STREAMS))), 120)
    took = time.monotonic() - started
    assert texts == ["tok " * PIECES] * STREAMS

    streams = [r for r in standin_requests(standin) if r["path"] == "/worker_generate_stream"]
    assert len(streams) == STREAMS + 1
    assert most_at_once(streams) == STREAMS, f"all {STREAMS} were not open at once"
    after, states = await settled(gateway.pid, 15, fds=before)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.url}/metrics") as resp:
            metrics = await resp.text()
    assert re.search(r"^fastchat_api_streams_in_flight 0\.0$", metrics, re.M)
    assert re.search(r"^fastchat_api_requests_in_flight 1\.0$", metrics, re.M)  # this scrape
    print(f"\n{STREAMS} streams in {took:.1f} s; server descriptors {before} before, {after} "
          f"after; sockets after: {dict(states)}")
