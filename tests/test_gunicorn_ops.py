"""gunicorn as an operator runs it (``config/gunicorn.conf.py``): the process-wide settings
apply, workers exit without errors in the log, and the metrics directory the config file makes
is gone however gunicorn exits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from .processes import ROOT, wait_until_serving
from .rawhttp import MALFORMED, exchange, request

GUNICORN = Path(sys.executable).with_name("gunicorn")


def gunicorn_env(tmp_path: Path, controller: str, bind: str) -> dict[str, str]:
    """One worker on uvloop (the default), the metrics directory made under ``tmp_path/tmp``."""
    config = tmp_path / "gateway.yaml"
    config.write_text(f"controller:\n  address: {controller}\nserver:\n  shutdown_timeout: 1\n")
    (tmp_path / "tmp").mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    return env | {"FASTCHAT_API_CONFIG": str(config), "FASTCHAT_API_BIND": bind,
                  "WEB_CONCURRENCY": "1", "XDG_RUNTIME_DIR": str(tmp_path),  # its control socket
                  "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}


async def run_gunicorn(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            str(GUNICORN), "-c", "config/gunicorn.conf.py", cwd=ROOT, env=env, stdout=out, stderr=out)


async def test_workers_exit_without_errors_and_the_metrics_directory_goes(fake, tmp_path, unused_tcp_port):
    bind = f"127.0.0.1:{unused_tcp_port}"
    log = tmp_path / "gunicorn.log"
    proc = await run_gunicorn(gunicorn_env(tmp_path, fake.address, bind), log)
    try:
        await wait_until_serving(f"http://{bind}", proc)
        assert [path.name for path in (tmp_path / "tmp").iterdir()] != []  # the metrics directory
        host, port = bind.split(":")
        for data in (request("GET", "/health"), MALFORMED):  # server.server_header applied
            assert (await exchange(host, int(port), data)).values("Server") == ["fastchat_api"]
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(proc.wait(), 30)
    text = log.read_text()
    assert returncode == 0, text[-2000:]
    assert "Worker exiting" in text
    assert "Error while closing socket" not in text and "Bad file descriptor" not in text, text
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_failed_bind_leaves_no_metrics_directory(tmp_path):
    """gunicorn retries the bind for about five seconds, then exits without calling on_exit."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    bind = "127.0.0.1:%d" % taken.getsockname()[1]
    log = tmp_path / "gunicorn.log"
    try:
        proc = await run_gunicorn(gunicorn_env(tmp_path, "http://127.0.0.1:9", bind), log)
        returncode = await asyncio.wait_for(proc.wait(), 60)
    finally:
        taken.close()
    assert returncode != 0 and "Can't connect" in log.read_text()
    assert list((tmp_path / "tmp").iterdir()) == []
