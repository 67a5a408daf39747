"""Our gateway as a real process, both ways production runs it (``python -m fastchat_api``, and
gunicorn with ``config/gunicorn.conf.py``), for what only a process shows: its start-up, its
log, aiohttp's own answers outside any application hook, a free event loop under load.

Started, waited for and stopped by devstack's :class:`~devstack.stack.Stack` (mirakuru: the
whole process group is stopped, the log's last lines are in every failure); stdout and stderr
go to the process's log file, ``proc.log_path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, AsyncIterator
from unittest import mock

import pytest
import yaml

from devstack.processes import PROJECT_ROOT, ManagedProcess, child_env
from devstack.stack import Stack

from .waiting import until

GUNICORN_CONF = PROJECT_ROOT / "config" / "gunicorn.conf.py"
# Where gunicorn's processes count their metrics; a directory of the developer's own would
# make every gateway count in it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STANDIN_MODEL = "standin-model"  # what the worker stand-ins of the fault and soak tests serve
EXIT_TIMEOUT = 30.0  # seconds; a refused start-up exits in about one, a started server never


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m fastchat_api *args`` from this checkout, run to its exit, its output as
    text: for a start-up the gateway refuses. Fails the test if it is still running after
    ``EXIT_TIMEOUT`` seconds: it started instead."""
    try:
        return subprocess.run([sys.executable, "-m", "fastchat_api", *args], capture_output=True,
                              text=True, timeout=EXIT_TIMEOUT, env=child_env({}))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the gateway started with {args}")


def gateway_command(config: Path, host: str, port: int, *, gunicorn: bool = False,
                    workers: int = 1) -> tuple[list[str], dict[str, str]]:
    """The command line and the environment of a gateway serving ``config`` on ``host:port``:
    ``python -m fastchat_api``, or gunicorn with ``workers`` processes."""
    if gunicorn:
        return [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)], {
            "FASTCHAT_API_CONFIG": str(config), "FASTCHAT_API_BIND": f"{host}:{port}",
            "WEB_CONCURRENCY": str(workers),
            "XDG_RUNTIME_DIR": str(config.parent)}  # its control socket, one per gateway
    return [sys.executable, "-m", "fastchat_api", "--config", str(config),
            "--host", host, "--port", str(port)], {}


def start_gateway(stack: Stack, *, gunicorn: bool = False, workers: int = 1, port: int | None = None,
                  env: dict[str, str] | None = None, ready: bool = True,
                  **sections: Any) -> ManagedProcess:
    """A gateway as a process of ``stack``, its config file made of these sections; on
    ``port`` (default: a free one). Started when ``GET /health`` answers, unless ``ready`` is
    false (a process expected to exit by itself). ``env`` is added to the environment, which
    lacks ``PROMETHEUS_MULTIPROC_DIR``. :class:`~devstack.processes.StackError` (with the
    log's last lines) when it exits first or does not answer within a minute. A process not
    expected to become ready may be given a taken ``port`` on purpose (a bind that fails)."""
    port = stack.reserve(port) if ready else port or stack.free_port()
    config = stack.directory / f"gateway-{port}.yaml"
    config.write_text(yaml.safe_dump(sections))
    argv, command_env = gateway_command(config, stack.host, port, gunicorn=gunicorn, workers=workers)
    env = command_env | (env or {})
    with mock.patch.dict(os.environ):
        os.environ.pop(MULTIPROC_ENV, None)
        if not ready:
            return stack.start_process("gateway", argv, port=port, env=env,
                                       url=f"http://{stack.host}:{port}")
        return stack.start_gateway(port, argv=argv, ready_path="/health", env=env)


@contextlib.asynccontextmanager
async def gateway_process(directory: Path, **options: Any) -> AsyncIterator[ManagedProcess]:
    """:func:`start_gateway` in a stack of its own in ``directory`` (started from a thread, so
    that servers on the test's loop, such as the ``fake`` controller, answer meanwhile), for
    the block; then stopped (SIGTERM to its process group, SIGKILL 5 s later)."""
    stack = Stack(directory / "stack")
    try:
        yield await asyncio.to_thread(start_gateway, stack, **options)
    finally:
        await asyncio.to_thread(stack.close)


async def exited(proc: ManagedProcess, timeout: float = 30.0) -> int:
    """The exit status of ``proc``, once it exits by itself or on a signal the test sent."""
    return await asyncio.to_thread(proc.popen.wait, timeout)


def log_lines(proc: ManagedProcess) -> list[str]:
    """What the process has written so far (stdout and stderr), without the supervisor's lines."""
    text = proc.log_path.read_text(encoding="utf-8", errors="backslashreplace")
    return [line for line in text.splitlines() if line and not line.startswith("===== ")]


def matching(proc: ManagedProcess, pattern: str) -> list[str]:
    """The lines of ``proc``'s log in which ``pattern`` is found."""
    return [line for line in log_lines(proc) if re.search(pattern, line)]


async def wait_for_line(proc: ManagedProcess, pattern: str, timeout: float = 10.0) -> str:
    """The first line of ``proc``'s log matching ``pattern``, waiting up to ``timeout`` s for it."""
    await until(lambda: matching(proc, pattern), f"a line matching {pattern!r}", timeout=timeout,
                every=0.05)
    return matching(proc, pattern)[0]


def standin_requests(proc: ManagedProcess) -> list[dict[str, Any]]:
    """What a worker stand-in process received: path, started, ended (``time.monotonic()``)
    and outcome of each request."""
    with urllib.request.urlopen(f"{proc.url}/standin/requests", timeout=5) as resp:
        return list(json.load(resp))
