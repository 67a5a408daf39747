"""A port that is taken stops the dev stack and the server at once, with one line naming it.

Each test holds a port with a listening socket of its own and runs the real command as a
process."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Iterator

import pytest

from devstack.processes import StackError, Supervisor, child_env


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that a listening socket holds for the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run(*argv: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                          timeout=120, cwd=cwd, stdin=subprocess.DEVNULL, env=child_env({}))


@pytest.mark.parametrize("flag", ["--port", "--controller-port", "--worker-port"])
def test_devstack_stops_on_a_taken_port(flag, busy_port, tmp_path):
    # --tiny so that, were the port not checked first, the stack would come up in seconds
    done = run("devstack", "--tiny", "--dir", str(tmp_path), flag, str(busy_port), "--exit",
               cwd=str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"devstack: error: port {busy_port} on 127.0.0.1 is already in use: Address already in use"]
    assert "up" not in done.stdout.split()
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_supervisor_refuses_a_taken_port(busy_port, tmp_path):
    with Supervisor(tmp_path) as supervisor:
        with pytest.raises(StackError, match=f"port {busy_port} on 127.0.0.1 is already in use"):
            supervisor.reserve(busy_port)


def test_server_on_a_taken_port_says_so_in_one_line(busy_port, tmp_path):
    done = run("fastchat_api", "--host", "127.0.0.1", "--port", str(busy_port), cwd=str(tmp_path))
    assert done.returncode == 1
    assert done.stderr == (f"fastchat_api: cannot listen on 127.0.0.1:{busy_port}: "
                           "Address already in use\n")
    assert done.stdout == ""
