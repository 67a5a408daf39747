"""What the benchmark needs besides the project, checked before anything starts.

The benchmark installs nothing: a benchmark that ran apt-get or pip would change the machine it
measures, and need rights it should not have. Every missing tool is named with the command that
installs it, and the run stops (exit status 2) before any process starts.
"""

from __future__ import annotations

import importlib.util
import resource
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack import fastchat_venv


@dataclass(frozen=True)
class Tools:
    wrk: str
    fastchat_python: Path  # the interpreter of FastChat's controller and API server
    pyspy: str | None  # with --profile


def _pyspy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def check(venv: Path, *, docs: bool, gunicorn: bool, profile: bool) -> Tools:
    """The tools for a run, or exit with status 2 after printing how to install those missing:
    wrk, FastChat's virtualenv ``venv``, and matplotlib (with ``docs``), gunicorn (with
    ``gunicorn``), py-spy (with ``profile``) in this interpreter's environment."""
    missing: list[tuple[str, str]] = []
    wrk = shutil.which("wrk")
    if not wrk:
        missing.append(("wrk", "sudo apt-get install -y wrk    # Debian, Ubuntu; macOS: brew install wrk"))
    python = venv / "bin" / "python"
    if not fastchat_venv.works(python):
        missing.append((f"FastChat's virtualenv {venv}", fastchat_venv.command(venv)))
    if docs and importlib.util.find_spec("matplotlib") is None:
        missing.append(("matplotlib, for the plot (or run with --no-docs)", "pip install -e '.[bench]'"))
    if gunicorn and importlib.util.find_spec("gunicorn") is None:
        missing.append(("gunicorn (or run with --no-gunicorn)", "pip install -e '.[gunicorn]'"))
    pyspy = _pyspy() if profile else None
    if profile and not pyspy:
        missing.append(("py-spy, for --profile", "pip install py-spy"))
    if missing:
        lines = [f"  {what}:\n    {command}" for what, command in missing]
        print("bench: missing; install, then run again:\n" + "\n".join(lines), file=sys.stderr)
        sys.exit(2)
    return Tools(wrk=wrk, fastchat_python=python, pyspy=pyspy)


def check_limits(redis: bool = True) -> str:
    """wrk for ``--limits`` and ``--ab`` (and redis-server with ``redis``), or exit with status
    2 saying how to install them."""
    wrk = shutil.which("wrk")
    needed = [("wrk", wrk)] + ([("redis-server", shutil.which("redis-server"))] if redis else [])
    missing = [f"  {tool}:\n    sudo apt-get install -y {tool}" for tool, found in needed if not found]
    if missing or wrk is None:
        print("bench: missing; install, then run again:\n" + "\n".join(missing), file=sys.stderr)
        sys.exit(2)
    return wrk


def check_pyspy() -> str:
    """py-spy, or exit with status 2 saying how to install it."""
    pyspy = _pyspy()
    if not pyspy:
        print("bench: missing; install, then run again:\n  py-spy, for --profile:\n    pip install py-spy",
              file=sys.stderr)
        sys.exit(2)
    return pyspy


def raise_fd_limit(want: int = 65536) -> int:
    """Raise the soft limit of open files towards ``want`` (not past the hard limit); the
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
