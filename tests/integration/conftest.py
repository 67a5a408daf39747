"""Processes of their own for the tests that break things (kill, stop, restart, overload), so
that the session's shared stack stays whole: worker stand-ins, FastChat's real controller and
our gateway, each a process on loopback, all stopped when the test ends."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.processes import ManagedProcess
from devstack.stack import Stack

from ..support import STANDIN_MODEL, start_gateway


class Rig:
    """Starts the processes of one test in its own :class:`Stack`."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

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
        """Our server in front of the ``controller`` URL with these config sections (access
        log off unless given): ``python -m fastchat_api``, or gunicorn with ``workers`` aiohttp
        workers (``config/gunicorn.conf.py``)."""
        sections["controller"] = {"address": controller, **sections.get("controller", {})}
        return start_gateway(self.stack, gunicorn=gunicorn, workers=workers,
                             **({"logging": {"access_format": "off"}} | sections))


@pytest.fixture
def rig(tmp_path):
    with Stack(tmp_path / "stack") as stack:
        yield Rig(stack)
