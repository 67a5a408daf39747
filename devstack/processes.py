"""Child processes on loopback, each with a log file, started and stopped as one set.

The dev stack, the integration tests and the benchmark run servers as child processes and need
the same things of each: start it and wait until it answers, stop it even when a test fails (no
orphan keeps a port), and when it dies or hangs, say why. mirakuru starts each child in a
session of its own marked by an environment variable, polls a readiness check until a deadline
(killing the child when it passes), kills the child's whole group and every process it started,
and at interpreter exit sweeps every child left. This module adds what mirakuru has no notion
of: free ports, one log file per child whose last lines go into every error, and a set of
children stopped within one grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, Sequence, Union

import mirakuru

__all__ = ["HOST", "ManagedProcess", "StackError", "Supervisor", "check_port_free", "find_free_port",
           "http_post_json"]

HOST = "127.0.0.1"
#: Seconds between SIGTERM and SIGKILL when stopping a child.
STOP_GRACE = 5.0
LOG_TAIL_LINES = 60
PROJECT_ROOT = Path(__file__).resolve().parent.parent

ReadyCheck = Union[str, Callable[[], bool], None]


class StackError(RuntimeError):
    """A child process died, or did not become ready in time."""


def find_free_port(host: str = HOST, exclude: Iterable[int] = ()) -> int:
    """A TCP port free on ``host`` right now and not in ``exclude``; :class:`StackError` if
    100 tries found none."""
    excluded = set(exclude)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in excluded:
            return port
    raise StackError("could not find a free port")


def check_port_free(host: str, port: int) -> None:
    """:class:`StackError` ("port N on HOST is already in use: ...") unless a server could
    listen on ``host:port`` now. Binds as servers do (``SO_REUSEADDR``), so a port whose last
    connections are closing counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise StackError(f"port {port} on {host} is already in use: {exc.strerror}") from None


def http_post_json(url: str, payload: Any = None, timeout: float = 10.0) -> Any:
    """POST ``payload`` (``{}`` if None) as JSON; the decoded JSON answer. Raises
    :class:`urllib.error.URLError` (an :class:`OSError`) when the server cannot be reached or
    answers with an error status."""
    data = json.dumps({} if payload is None else payload).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode() or "null")


def http_answers(url: str, method: str = "GET", timeout: float = 3.0) -> bool:
    """True when ``url`` answers ``method`` (a POST with an empty JSON object) with a status
    below 500: the server is up, whatever it thinks of the request."""
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code < 500
    except (OSError, ValueError):
        return False


@dataclass
class ManagedProcess:
    """One child (leader of its own process group) and its log file."""

    name: str
    argv: list[str]
    executor: mirakuru.SimpleExecutor = field(repr=False)
    popen: subprocess.Popen = field(repr=False)
    log_path: Path
    log_file: IO[bytes] = field(repr=False)
    port: int | None = None
    url: str | None = None
    #: The address it listens on with ``port`` (the supervisor's host).
    host: str = HOST
    started_at: float = field(default_factory=time.monotonic)
    ready_seconds: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status (negative: killed by that signal), None while it runs."""
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the child's stdout and stderr (at most 64 KiB)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}, log {self.log_path})"

    def failure(self, why: str) -> StackError:
        """A :class:`StackError` saying ``why``, with the command and the log's last lines."""
        return StackError(f"{self.describe()} {why}\ncommand: {' '.join(self.argv)}\n"
                          f"--- last lines of {self.log_path} ---\n{self.tail()}")

    def terminate(self) -> None:
        """SIGTERM to the child's process group, without waiting."""
        if self.alive():  # not reaped, so the group id is still the child's
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        """Wait until ``deadline`` (``time.monotonic()``) for the child to exit, then kill its
        group and whatever it started, reap it and close its log."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(max(0.0, deadline - time.monotonic()))
        self.executor.kill()
        self.log_file.close()

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM, SIGKILL after ``grace`` seconds; the exit status."""
        self.terminate()
        self.wait_stopped(time.monotonic() + grace)
        return self.popen.returncode


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child: ours, offline and unbuffered, with the checkout importable
    (``python -m fastchat_api``, ``python -m devstack.standin``), then ``extra``."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # FastChat's loggers write files into $LOGDIR (default: cwd); "" disables them: everything
    # already goes to the child's log.
    env.setdefault("LOGDIR", "")
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(PROJECT_ROOT) not in parts:
        env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *parts])
    env.update(extra)
    return env


class Supervisor:
    """Child processes on ``host``, each in its own process group with stdout and stderr in
    ``<directory>/logs/<name>.log``.

    ``close()`` (also on ``__exit__``) sends SIGTERM to every group, SIGKILL ``grace`` seconds
    later, and reaps everything; mirakuru kills what is left at interpreter exit.
    """

    def __init__(self, directory: Union[str, Path], *, python: str | None = None,
                 env: Mapping[str, str] | None = None, host: str = HOST) -> None:
        self.directory = Path(directory).resolve()
        self.log_dir = self.directory / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.python = python or sys.executable
        self.env = dict(env or {})
        self.host = host
        self.processes: list[ManagedProcess] = []
        self._ports: set[int] = set()
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def free_port(self) -> int:
        """A free port on ``host`` not handed out by this supervisor before."""
        with self._lock:
            port = find_free_port(self.host, exclude=self._ports)
            self._ports.add(port)
            return port

    def reserve(self, port: int | None) -> int:
        """``port``, or a free one when None; either is not handed out again.
        :class:`StackError` when ``port`` is taken (:func:`check_port_free`): a child would not
        start there, and the readiness check would ask whatever server holds it."""
        if port is None:
            return self.free_port()
        check_port_free(self.host, port)
        with self._lock:
            self._ports.add(port)
        return port

    def start_process(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: ReadyCheck = None,
        ready_method: str = "GET",
        timeout: float = 60.0,
        port: int | None = None,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """Start ``argv`` as ``name`` (made unique: ``name-2``...) and wait until it is ready.

        ``ready`` is a URL (ready when it answers ``ready_method`` with a status below 500), a
        callable returning True once ready, or None (no wait). Raises :class:`StackError`
        (with the log's last lines) when the child exits first or is not ready within
        ``timeout`` seconds; the child is then stopped.
        """
        if self._closed:
            raise StackError("stack is closed")
        name = self._unique_name(name)
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "ab", buffering=0)
        log_file.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        executor = mirakuru.SimpleExecutor(
            list(argv), cwd=str(self.directory), timeout=timeout, sleep=0.1,
            envvars=child_env({**self.env, **(env or {})}),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            executor.start()
        except BaseException:
            log_file.close()
            raise
        assert executor.process is not None
        proc = ManagedProcess(name=name, argv=list(argv), executor=executor, popen=executor.process,
                              log_path=log_path, log_file=log_file, port=port, url=url,
                              host=self.host)
        self.processes.append(proc)
        if ready is not None:
            self._wait_ready(proc, ready, ready_method, timeout)
        proc.ready_seconds = time.monotonic() - proc.started_at
        return proc

    def check_alive(self) -> None:
        """Raise :class:`StackError` if any child has exited."""
        for proc in self.processes:
            if not proc.alive():
                raise proc.failure(f"exited with code {proc.returncode}")

    def close(self, grace: float = STOP_GRACE) -> None:
        """Stop every child: SIGTERM to all (newest first), SIGKILL to those still running
        ``grace`` seconds later, reap. Idempotent; nothing starts afterwards."""
        self._closed = True
        procs = list(reversed(self.processes))
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + grace
        for proc in procs:
            proc.wait_stopped(deadline)

    def summary(self) -> str:
        """One line per child: name, URL, pid, state, log."""
        lines = []
        width = max((len(proc.name) for proc in self.processes), default=0)
        for proc in self.processes:
            state = "running" if proc.alive() else f"exited {proc.returncode}"
            lines.append(f"  {proc.name:<{width}} {proc.url or '-':<28} pid {proc.pid:<7} "
                         f"{state:<10} log {proc.log_path}")
        return "\n".join(lines)

    def _unique_name(self, name: str) -> str:
        taken = {p.name for p in self.processes}
        number, unique = 2, name
        while unique in taken:
            unique, number = f"{name}-{number}", number + 1
        return unique

    def _wait_ready(self, proc: ManagedProcess, ready: str | Callable[[], bool], method: str,
                    timeout: float) -> None:
        check = (lambda: http_answers(ready, method)) if isinstance(ready, str) else ready

        def up() -> bool:
            if not proc.alive():
                raise proc.failure(f"exited with code {proc.returncode} before it was ready")
            return check()

        try:
            proc.executor.wait_for(up)  # kills the child when ``timeout`` passes
        except mirakuru.TimeoutExpired:
            proc.stop()
            raise proc.failure(f"was not ready after {timeout:.0f} s") from None
        except BaseException:
            proc.stop()
            raise
