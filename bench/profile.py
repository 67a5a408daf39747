"""Where our server spends its time under load: py-spy samples it while wrk holds the load,
and the samples are summed per function (self and inclusive shares of the busy samples)."""

from __future__ import annotations

import collections
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.processes import ManagedProcess

from . import ROOT, log
from .load import Wrk, chat_body

_IDLE_LEAVES = ("EpollSelector.select", "select (selectors", "wait (threading", "Condition.wait",
                "_worker (concurrent", "get (queue")
_OUTER_FRAMES = ("<module>", "main (fastchat_api", "run_app", "BaseEventLoop.run",
                 "_run_module_as_main", "_run_code", "Handle._run", "BaseEventLoop._run_once")


def profile(pyspy: str, wrk: Wrk, server: ManagedProcess, concurrency: int, duration: float,
            out_dir: Path) -> dict[str, Any] | None:
    """Sample ``server`` for ``duration`` seconds under non-stream chat load at ``concurrency``
    (raw stacks, then a flame graph under the same load) into ``out_dir``. The summary of
    :func:`summarize` with ``load`` (wrk's result), ``raw`` and ``svg`` paths; None if py-spy
    failed."""
    raw = out_dir / f"profile-c{concurrency}.txt"
    svg = out_dir / f"profile-c{concurrency}.svg"
    url = server.url + "/v1/chat/completions"
    spy, load = _sample(pyspy, wrk, url, server.pid, concurrency, duration,
                        ["--idle", "--format", "raw", "-o", str(raw)])
    if spy.returncode != 0 or not raw.exists():
        log(f"py-spy failed: {spy.stderr.strip()[-500:]}")
        return None
    _sample(pyspy, wrk, url, server.pid, concurrency, duration, ["--format", "flamegraph", "-o", str(svg)])
    summary = summarize(raw)
    summary.update(load=load, raw=str(raw.relative_to(ROOT)),
                   svg=str(svg.relative_to(ROOT)) if svg.exists() else None)
    log(f"profile of {server.name} at c={concurrency} ({load['rps']:.0f} req/s while sampled): "
        f"{summary['busy_pct']:.0f}% of samples busy; {summary['raw']}, {summary['svg']}")
    for name, share in summary["inclusive"][:25]:
        print(f"      {share:5.1f}% incl  {name}")
    for name, share in summary["self"][:20]:
        print(f"      {share:5.1f}% self  {name}")
    return summary


def _sample(pyspy: str, wrk: Wrk, url: str, pid: int, concurrency: int, duration: float,
            output: list[str]) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """``py-spy record`` of ``pid`` at 200 Hz while wrk loads ``url``; py-spy's outcome and
    wrk's result."""
    popen, out = wrk.start(url, chat_body(), concurrency, duration + 2, expect="chat.completion")
    try:
        time.sleep(1)
        spy = subprocess.run([pyspy, "record", "--pid", str(pid), "-d", f"{duration:g}", "-r", "200",
                              *output], capture_output=True, text=True)
    finally:
        load = wrk.finish(popen, out, duration + 2)
    return spy, load


def _short_frame(frame: str) -> str:
    """``func (path:line)`` as ``func (path)``, the path from its package."""
    m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    func, path = m.groups()
    path = re.sub(r".*/site-packages/", "", path)
    path = re.sub(re.escape(str(ROOT)) + "/", "", path)
    path = re.sub(r".*/lib/python3\.\d+/", "", path)
    return f"{func} ({path})"


def summarize(raw: Path) -> dict[str, Any]:
    """py-spy's collapsed stacks in ``raw``: ``samples``, ``busy_pct`` (not waiting in epoll or
    for work), and ``self`` and ``inclusive`` lists of (function, percent of busy samples)."""
    total = idle = 0
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_short_frame(f) for f in stack.split(";")]
        total += count
        if frames[-1].startswith(_IDLE_LEAVES):
            idle += count
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
    busy = max(total - idle, 1)
    return {
        "samples": total,
        "busy_pct": 100 * (total - idle) / max(total, 1),
        "self": [(f, 100 * n / busy) for f, n in own.most_common(40)],
        "inclusive": [(f, 100 * n / busy) for f, n in incl.most_common(200)
                      if not f.startswith(_OUTER_FRAMES)][:60],
    }
