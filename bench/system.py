"""The machine the benchmark runs on: CPU time per process group, memory per process, and a
description of the machine and the versions measured.

On a shared machine other processes lower and scatter the numbers (on 2 cores, a test suite
running beside the benchmark halves them), so the CPU they use while a point is measured is
reported beside it. Linux only: everything is read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any, Callable, Iterable

_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """Seconds of CPU the whole machine spent busy since boot (steal included)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def groups_cpu(groups: set[int]) -> float:
    """Seconds of CPU used by the live processes of these process groups."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                rest = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[2]) in groups:
            total += int(rest[11]) + int(rest[12])
    return total / _TICK


def children_cpu() -> float:
    """Seconds of CPU used by this process's reaped children (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """How much of the machine processes other than ours used while we measured; ours are
    this process's group, its reaped children and the process groups ``groups()`` lists."""

    def __init__(self, groups: Callable[[], Iterable[int]]) -> None:
        self.groups = groups

    def _ours(self) -> float:
        return groups_cpu(set(self.groups()) | {os.getpgrp()}) + children_cpu()

    def start(self) -> tuple[float, float, float]:
        """A starting point for :meth:`other_pct`."""
        return time.monotonic(), machine_busy(), self._ours()

    def other_pct(self, started: tuple[float, float, float]) -> float:
        """Percent of the whole machine (all cores) used by others since ``started``."""
        t0, busy0, ours0 = started
        elapsed = time.monotonic() - t0
        others = (machine_busy() - busy0) - (self._ours() - ours0)
        return max(0.0, 100 * others / (elapsed * (os.cpu_count() or 1))) if elapsed > 0 else 0.0


def idle_check(seconds: float = 2.0) -> float:
    """Percent of the machine busy during ``seconds`` before anything starts."""
    t0, busy0 = time.monotonic(), machine_busy()
    time.sleep(seconds)
    return 100 * (machine_busy() - busy0) / ((time.monotonic() - t0) * (os.cpu_count() or 1))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM... of a process, in kB; empty once it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key.startswith("Vm"):
                    values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def _first_value(path: str, key: str, separator: str, default: str) -> str:
    """The value of the first line ``key<separator>value`` of ``path``, unquoted."""
    with contextlib.suppress(OSError):
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return line.split(separator, 1)[1].strip().strip('"')
    return default


def machine() -> dict[str, Any]:
    """CPU model, cores, memory (GB), OS and kernel."""
    mem_kb = _first_value("/proc/meminfo", "MemTotal", ":", "0 kB").split()[0]
    cpu = _first_value("/proc/cpuinfo", "model name", ":", platform.processor() or "unknown CPU")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": int(mem_kb) / 1024 / 1024,
            "os": _first_value("/etc/os-release", "PRETTY_NAME=", "=", platform.system()),
            "kernel": platform.release()}


def dist_versions(python: str, names: list[str]) -> dict[str, str | None]:
    """The installed versions of the distributions ``names`` for the interpreter ``python``."""
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            f"for n in {names!r}:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "sys.__stdout__.write(json.dumps(out))")
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def versions(fc_python: str, wrk: str, ours_version: str) -> dict[str, Any]:
    """Python, ours and what it runs on, FastChat's virtualenv, wrk."""
    ours = dist_versions(sys.executable, ["aiohttp", "orjson", "marshmallow", "gunicorn"])
    theirs = dist_versions(fc_python, ["fschat", "fastapi", "starlette", "pydantic", "uvicorn",
                                       "httpx", "aiohttp"])
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
    out = {"python": platform.python_version(), "fastchat_api": ours_version}
    out.update({k: v for k, v in ours.items() if v})
    out.update({f"FastChat venv: {k}": v for k, v in theirs.items() if v})
    out["wrk"] = (wrk_version[0].split(" [")[0] if wrk_version else "?")
    return out
