"""gunicorn as an operator runs it (``config/gunicorn.conf.py``): the process-wide settings
apply, workers exit without errors in the log, and the metrics directory the config file makes
is gone however gunicorn exits."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from devstack.stack import Stack

from .support import MALFORMED, exchange, exited, gateway_process, request, start_gateway


def gunicorn_options(tmp_path: Path, controller: str) -> dict:
    """One worker on uvloop (the default), the metrics directory made under ``tmp_path/tmp``."""
    (tmp_path / "tmp").mkdir()
    return {"gunicorn": True, "env": {"TMPDIR": str(tmp_path / "tmp")},
            "controller": {"address": controller}, "server": {"shutdown_timeout": 1}}


async def test_workers_exit_without_errors_and_the_metrics_directory_goes(fake, tmp_path):
    async with gateway_process(tmp_path, **gunicorn_options(tmp_path, fake.address)) as gateway:
        assert [path.name for path in (tmp_path / "tmp").iterdir()] != []  # the metrics directory
        for data in (request("GET", "/health"), MALFORMED):  # server.server_header applied
            assert (await exchange(gateway, data)).values("Server") == ["fastchat_api"]
        gateway.popen.send_signal(signal.SIGTERM)  # to the master alone
        returncode = await exited(gateway)
    text = gateway.log_path.read_text()
    assert returncode == 0, text[-2000:]
    assert "Worker exiting" in text
    assert "Error while closing socket" not in text and "Bad file descriptor" not in text, text
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_failed_bind_leaves_no_metrics_directory(tmp_path):
    """gunicorn retries the bind for about five seconds, then exits without calling on_exit."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with Stack(tmp_path / "stack") as stack:
            gateway = start_gateway(stack, port=taken.getsockname()[1], ready=False,
                                    **gunicorn_options(tmp_path, "http://127.0.0.1:9"))
            returncode = await exited(gateway, 60)
    finally:
        taken.close()
    assert returncode != 0 and "Can't connect" in gateway.log_path.read_text()
    assert list((tmp_path / "tmp").iterdir()) == []
