"""Where our server spends its time under load: py-spy samples it while wrk holds the load,
and the samples are summed per function (self and inclusive shares of the busy samples) and
per part of a request (:data:`PARTS`).

Samples are taken only while the thread runs (no ``--idle``): uvloop waits for events in C,
below ``run_app``, where an idle sample could not be told from the loop's own work."""

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
#: Where a sample's time goes: the innermost frame matching one of these (by path from its
#: package) names its part; frames of the standard library and of aiohttp's modules shared by
#: its server and client (``http_writer``, ``streams``, ``helpers``...) count for their caller.
PARTS = (
    ("event loop (uvloop's own work)", ("run_app (aiohttp/web.py)", "BaseEventLoop.run")),
    ("JSON", ("json/", "orjson", "fastchat_api/jsonutil.py")),
    ("marshmallow", ("marshmallow/",)),
    ("logging and access log", ("logging/", "fastchat_api/accesslog.py", "fastchat_api/logfilter.py")),
    ("metrics", ("prometheus_client/", "fastchat_api/metrics.py")),
    ("aiohttp client", ("aiohttp/client", "aiohttp/connector.py")),
    ("aiohttp server", ("aiohttp/web", "aiohttp/_http_parser", "aiohttp/http_parser")),
    ("our code", ("fastchat_api/",)),
)
_OUTER_FRAMES = ("<module>", "main (fastchat_api", "run_app", "BaseEventLoop.run",
                 "_run_module_as_main", "_run_code", "Handle._run", "BaseEventLoop._run_once")


def profile(pyspy: str, wrk: Wrk, server: ManagedProcess, concurrency: int, duration: float,
            out_dir: Path, *, stream: bool = False) -> dict[str, Any] | None:
    """Sample ``server`` for ``duration`` seconds under chat load (streamed with ``stream``) at
    ``concurrency`` (raw stacks, then a flame graph under the same load) into ``out_dir``. The
    summary of :func:`summarize` with ``load`` (wrk's result), ``raw`` and ``svg`` paths; None
    if py-spy failed."""
    stem = f"profile-{server.name}-{'stream' if stream else 'chat'}-c{concurrency}"
    raw, svg = out_dir / f"{stem}.txt", out_dir / f"{stem}.svg"
    url = server.url + "/v1/chat/completions"
    spy, load = _sample(pyspy, wrk, url, server.pid, concurrency, duration, stream,
                        ["--format", "raw", "-o", str(raw)])
    if spy.returncode != 0 or not raw.exists():
        log(f"py-spy failed: {spy.stderr.strip()[-500:]}")
        return None
    _sample(pyspy, wrk, url, server.pid, concurrency, duration, stream,
            ["--format", "flamegraph", "-o", str(svg)])
    summary = summarize(raw)
    summary.update(load=load, raw=_shown(raw), svg=_shown(svg) if svg.exists() else None)
    log(f"profile of {server.name}, {'stream' if stream else 'chat'} at c={concurrency} "
        f"({load['rps']:.0f} req/s while sampled): "
        f"{summary['samples']} samples; {summary['raw']}, {summary['svg']}")
    for name, share in summary["inclusive"][:25]:
        print(f"      {share:5.1f}% incl  {name}")
    for name, share in summary["self"][:20]:
        print(f"      {share:5.1f}% self  {name}")
    for name, share in summary["parts"]:
        print(f"      {share:5.1f}% in    {name}")
    return summary


def _shown(path: Path) -> str:
    """``path`` from the checkout, if it is in it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _sample(pyspy: str, wrk: Wrk, url: str, pid: int, concurrency: int, duration: float, stream: bool,
            output: list[str]) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """``py-spy record`` of ``pid`` at 200 Hz while wrk loads ``url``; py-spy's outcome and
    wrk's result."""
    popen, out = wrk.start(url, chat_body(stream=stream), concurrency, duration + 2,
                           expect="data: [DONE]" if stream else "chat.completion")
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


def _part(frames: list[str]) -> str:
    """The part of :data:`PARTS` a sample's stack (outermost frame first) is spent in."""
    for frame in reversed(frames):
        name_path = frame.replace(" (", "(").partition("(")
        for part, marks in PARTS:
            if any(mark in name_path[2] or frame.startswith(mark) for mark in marks):
                return part
    return "other"


def summarize(raw: Path) -> dict[str, Any]:
    """py-spy's collapsed stacks in ``raw``: ``samples``, ``busy_pct`` (not waiting in epoll or
    for work), ``self`` and ``inclusive`` lists of (function, percent of busy samples), and
    ``parts``, the busy samples by part of :data:`PARTS`."""
    total = idle = 0
    parts: collections.Counter[str] = collections.Counter()
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
        parts[_part(frames)] += count
        for frame in set(frames):
            incl[frame] += count
    busy = max(total - idle, 1)
    return {
        "samples": total,
        "busy_pct": 100 * (total - idle) / max(total, 1),
        "self": [(f, 100 * n / busy) for f, n in own.most_common(40)],
        "parts": [(p, 100 * n / busy) for p, n in parts.most_common()],
        "inclusive": [(f, 100 * n / busy) for f, n in incl.most_common(200)
                      if not f.startswith(_OUTER_FRAMES)][:60],
    }
