"""Processes of their own for the tests that break things (kill, stop, restart, overload), so
that the session's shared stack stays whole: worker stand-ins, FastChat's real controller and
our gateway, each a process on loopback, all stopped when the test ends."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.processes import ManagedProcess
from devstack.stack import Stack, gateway_command

STANDIN_MODEL = "standin-model"
GUNICORN_CONF = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"


def standin_requests(proc: ManagedProcess) -> list[dict[str, Any]]:
    """What a stand-in received: path, started, ended (``time.monotonic()``) and outcome."""
    with urllib.request.urlopen(f"{proc.url}/standin/requests", timeout=5) as resp:
        return json.load(resp)


class Rig:
    """Starts the processes of one test in its own :class:`Stack`."""

    def __init__(self, stack: Stack, directory: Path) -> None:
        self.stack = stack
        self.directory = directory

    def controller(self, port: int | None = None) -> ManagedProcess:
        """FastChat's real controller (again on ``port`` after a restart)."""
        return self.stack.start_controller(port)

    def standin(self, *, pieces: int = 4, delay: float = 0.0,
                controller: str | None = None) -> ManagedProcess:
        """A worker stand-in (``python -m devstack.standin``) answering ``pieces`` frames with
        ``delay`` seconds before each; registered with ``controller`` if given, else its own
        controller."""
        return self.stack.start_standin(f"{STANDIN_MODEL}:{pieces}:{delay}",
                                        controller_url=controller, heartbeat=0.3)

    def gateway(self, controller: str, /, *, gunicorn: bool = False, workers: int = 1,
                **sections: dict[str, Any]) -> ManagedProcess:
        """Our server in front of the ``controller`` URL with these config sections: ``python -m
        fastchat_api``, or gunicorn with ``workers`` aiohttp workers (``config/gunicorn.conf.py``)."""
        port = self.stack.free_port()
        url = f"http://127.0.0.1:{port}"
        config = self.directory / f"gateway-{port}.yaml"
        sections["controller"] = {"address": controller, **sections.get("controller", {})}
        config.write_text(yaml.safe_dump({"logging": {"access_format": "off"}} | sections))
        if gunicorn:
            argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)]
            env = {"FASTCHAT_API_CONFIG": str(config), "WEB_CONCURRENCY": str(workers),
                   "FASTCHAT_API_BIND": f"127.0.0.1:{port}"}
        else:
            argv, env = gateway_command(port, controller) + ["--config", str(config)], {}
        return self.stack.start_process("gateway", argv, ready=f"{url}/health", timeout=60,
                                        port=port, url=url, env=env)


@pytest.fixture
def rig(tmp_path):
    with Stack(tmp_path / "stack") as stack:
        yield Rig(stack, tmp_path)
