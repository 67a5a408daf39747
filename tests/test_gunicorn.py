"""The gateway under gunicorn with two processes, in front of the scripted stand-in: both
processes serve chats, /metrics adds up the counts of both, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp

from .support import CHAT, exited, gateway_process, samples, until, value


def chat_pids(log: Path) -> list[int]:
    """The process of each chat served, from the JSON access lines among gunicorn's own."""
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [entry["pid"] for entry in entries
            if entry["path"] == "/v1/chat/completions" and entry["status"] == 200]


async def test_two_processes_serve_count_together_and_stop_on_sigterm(fake, tmp_path):
    async with gateway_process(
        tmp_path, gunicorn=True, workers=2, controller={"address": fake.address},
        server={"shutdown_timeout": 2}, logging={"access_format": "json", "level": "INFO"},
    ) as gateway:
        log = gateway.log_path
        # A new connection per request, several at once, so that both processes accept some.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            chats = 0
            while len(set(chat_pids(log))) < 2 and chats < 200:
                batch = [session.post(f"{gateway.url}/v1/chat/completions", json=CHAT) for _ in range(4)]
                for resp in await asyncio.gather(*batch):
                    assert resp.status == 200, await resp.text()
                    resp.release()
                chats += len(batch)
                await until(lambda: len(chat_pids(log)) == chats, "the access lines", every=0.01)
            assert len(set(chat_pids(log))) == 2, log.read_text()[-2000:]
            for _ in range(4):  # whichever process answers the scrape, it counts both
                async with session.get(f"{gateway.url}/metrics") as resp:
                    counted = value(samples(await resp.text()), "fastchat_api_requests_total",
                                    route="/v1/chat/completions", model="fake-model", status="200")
                    assert counted == chats
        gateway.popen.send_signal(signal.SIGTERM)  # to the master alone
        returncode = await exited(gateway)
    assert returncode == 0, log.read_text()[-2000:]
    assert "Shutting down: Master" in log.read_text()
