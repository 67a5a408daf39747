"""The gateway under gunicorn with two processes, in front of the scripted stand-in: both
processes serve chats, /metrics adds up the counts of both, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .support import CHAT

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def chat_pids(log: Path) -> set[int]:
    """The processes that served chats, from the JSON access lines among gunicorn's own."""
    pids = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["path"] == "/v1/chat/completions" and entry["status"] == 200:
                pids.add(entry["pid"])
    return pids


def chats_counted(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fastchat_api_requests_total"
        and sample.labels["route"] == "/v1/chat/completions" and sample.labels["status"] == "200"
    )


async def wait_until_serving(session: aiohttp.ClientSession, url: str, proc) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.returncode is None, "gunicorn exited during start-up"
        try:
            async with session.get(f"{url}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)  # another process: nothing to await but its port
    raise AssertionError("gunicorn did not serve /health within 30 s")


async def test_two_processes_serve_count_together_and_stop_on_sigterm(fake, tmp_path, unused_tcp_port):
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"controller:\n  address: {fake.address}\n"
        "server:\n  shutdown_timeout: 2\n"
        "logging:\n  access_format: json\n  level: INFO\n"
    )
    url = f"http://127.0.0.1:{unused_tcp_port}"
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"FASTCHAT_API_CONFIG": str(config), "FASTCHAT_API_BIND": url.removeprefix("http://"),
            "WEB_CONCURRENCY": "2", "XDG_RUNTIME_DIR": str(tmp_path)}  # gunicorn's control socket
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(GUNICORN), "-c", "config/gunicorn.conf.py", cwd=ROOT, env=env,
            stdout=out, stderr=out,
        )
    try:
        # A new connection per request, several at once, so that both processes accept some.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            await wait_until_serving(session, url, proc)
            chats = 0
            while len(chat_pids(log)) < 2 and chats < 200:
                batch = [session.post(f"{url}/v1/chat/completions", json=CHAT) for _ in range(4)]
                for resp in await asyncio.gather(*batch):
                    assert resp.status == 200, await resp.text()
                    resp.release()
                chats += len(batch)
                await asyncio.sleep(0.05)  # let the access lines reach the file
            assert len(chat_pids(log)) == 2, log.read_text()[-2000:]
            for _ in range(4):  # whichever process answers the scrape, it counts both
                async with session.get(f"{url}/metrics") as resp:
                    assert chats_counted(await resp.text()) == chats
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(proc.wait(), 30)
    assert returncode == 0, log.read_text()[-2000:]
    assert "Shutting down: Master" in log.read_text()
