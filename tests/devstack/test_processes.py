"""devstack.processes: children started, waited for and stopped, with stdlib-only children."""

from __future__ import annotations

import contextlib
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devstack.processes import StackError, Supervisor


def _http_server_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def test_children_start_wait_and_stop(tmp_path):
    with Supervisor(tmp_path) as children:
        port = children.free_port()
        url = f"http://127.0.0.1:{port}"
        proc = children.start_process("web", _http_server_argv(port), ready=url + "/", timeout=30,
                                      port=port, url=url)
        assert proc.alive() and proc.ready_seconds is not None
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            assert resp.status == 200
        assert proc.log_path == tmp_path / "logs" / "web.log"
        # A child that ignores SIGTERM is killed after the grace period.
        stubborn = children.start_process("stubborn", [
            sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ignoring' + ' SIGTERM', flush=True); time.sleep(60)",
        ], ready=lambda: "ignoring SIGTERM" in (tmp_path / "logs" / "stubborn.log").read_text(),
           timeout=30)
        started = time.monotonic()
        children.close(grace=1.0)
        assert time.monotonic() - started < 10
    assert proc.returncode is not None
    assert stubborn.returncode == -9
    with pytest.raises(StackError, match="closed"):
        children.start_process("late", ["true"])


def test_what_a_child_started_is_stopped_with_it(tmp_path):
    grandchild = tmp_path / "grandchild.pid"
    with Supervisor(tmp_path) as children:
        children.start_process("parent", [
            sys.executable, "-c",
            "import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); "
            f"open({str(grandchild)!r}, 'w').write(str(p.pid)); time.sleep(60)",
        ], ready=grandchild.exists, timeout=30)
        stat = Path(f"/proc/{grandchild.read_text()}/stat")
    for _ in range(100):  # killed, then reaped by init
        with contextlib.suppress(FileNotFoundError):
            if ") Z " not in stat.read_text():
                time.sleep(0.05)
                continue
        break
    else:
        raise AssertionError("a grandchild in a session of its own outlived the supervisor")


def test_names_are_made_unique(tmp_path):
    with Supervisor(tmp_path) as children:
        names = [children.start_process("job", ["true"]).name for _ in range(3)]
    assert names == ["job", "job-2", "job-3"]


def test_a_child_dying_before_it_is_ready_is_reported_with_its_log(tmp_path):
    with Supervisor(tmp_path) as children:
        argv = [sys.executable, "-c", "import sys; print('boom: bad flag', flush=True); sys.exit(3)"]
        with pytest.raises(StackError) as info:
            children.start_process("dies", argv, ready=lambda: False, timeout=30)
    message = str(info.value)
    assert "exited with code 3" in message
    assert "boom: bad flag" in message


def test_a_child_not_ready_in_time_is_stopped_and_reported_with_its_log(tmp_path):
    with Supervisor(tmp_path) as children:
        argv = [sys.executable, "-c", "import time; print('still loading', flush=True); time.sleep(60)"]
        started = time.monotonic()
        with pytest.raises(StackError) as info:
            children.start_process("slow", argv, ready=lambda: False, timeout=1.5)
        assert time.monotonic() - started < 15
        assert not children.processes[0].alive()  # a failed start is stopped at once
    assert "not ready after" in str(info.value)
    assert "still loading" in str(info.value)
