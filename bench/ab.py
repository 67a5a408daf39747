"""``python -m bench --ab REF``: before and after a change, in one sitting, on a busy machine.

Our server as committed at ``REF`` and as in the working tree, and the floor proxy, in front of
one worker stand-in (which is its own controller; FastChat is not needed), take turns under the
same load: non-stream chat and streamed chat at 32 concurrent, non-stream chat at 256 (the
tail), ``--rounds`` alternating runs
of ``--duration / --rounds`` seconds each. Throughput on a shared machine moves with whatever
else runs; the CPU each answer cost the server process moves much less, so that is the figure
to compare (``server CPU ms/req``). With ``--profile``, py-spy then samples each server under
chat and stream load at 32, for the share of each part (see :mod:`bench.profile`). Unless
``--no-rss``, fresh processes of each then hold ``--streams`` slow streams, for their peak
memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from devstack.processes import ManagedProcess, StackError
from devstack.stack import Stack, gateway_command

from . import ROOT, log, source, system
from .load import SLOW_CHUNKS, SLOW_DELAY, Wrk, chat_body, merge_runs, standin_models
from .probes import slow_streams
from .profile import profile

CONCURRENCY = 32
FLOOR = "floor"
LOADS = {  # name: (body, expect, reject, concurrency)
    "chat": (chat_body(), "chat.completion", "", CONCURRENCY),
    "stream": (chat_body(stream=True), "data: [DONE]", '"error"', CONCURRENCY),  # not the floor's error_code
    "chat, the tail": (chat_body(), "chat.completion", "", 256),
}


def _servers(args: argparse.Namespace, stack: Stack, worker: ManagedProcess,
             suffix: str = "") -> dict[str, ManagedProcess]:
    """The ref's server, the working tree's, and the floor proxy (process names end in
    ``suffix``)."""
    code, sha = source.snapshot(args.ab, args.work_dir)
    commands = {
        f"{args.ab} ({sha[:8]})": ("gateway-ref", code, lambda port: gateway_command(port, worker.url)),
        "working tree": ("gateway-tree", ROOT, lambda port: gateway_command(port, worker.url)),
        FLOOR: ("floor-proxy", ROOT, lambda port: [sys.executable, str(ROOT / "bench" / "floor_proxy.py"),
                                                   "--host", stack.host, "--port", str(port),
                                                   "--worker", worker.url]),
    }
    servers = {}
    for name, (proc_name, path, argv) in commands.items():
        port = stack.free_port()
        url = f"http://{stack.host}:{port}"
        servers[name] = stack.start_process(proc_name + suffix, argv(port), ready=f"{url}/v1/models",
                                            port=port, url=url, env={"PYTHONPATH": str(path)})
    return servers


def _rss(args: argparse.Namespace, stack: Stack, worker: ManagedProcess) -> dict[str, Any]:
    """Fresh servers, one at a time, each holding ``--streams`` slow streams: peak RSS."""
    out = {}
    for name, proc in _servers(args, stack, worker, "-rss").items():
        if name == FLOOR:  # its events are the worker's frames, which the probe does not count
            proc.stop()
            continue
        try:
            url = proc.url + "/v1/chat/completions"
            asyncio.run(slow_streams(url, proc.pid, 1, 0, 60))  # caches and pools made
            idle = system.proc_status(proc.pid).get("VmRSS", 0) / 1024
            found = asyncio.run(slow_streams(url, proc.pid, args.streams, args.ramp,
                                             timeout=(SLOW_CHUNKS + 1) * SLOW_DELAY + 60))
        finally:
            proc.stop()
        out[name] = {"idle_mb": idle, **found}
        log(f"{name}: {args.streams} slow streams: peak RSS {found['hwm_mb']:.1f} MB (idle {idle:.1f} MB), "
            f"{found['dropped']} dropped")
    return out


def _point(wrk: Wrk, proc: ManagedProcess, load: str, seconds: float) -> dict[str, Any]:
    """One run: wrk's result with the server's CPU per good answer (ms)."""
    body, expect, reject, concurrency = LOADS[load]
    before = system.groups_cpu({proc.pid})
    result = wrk.run(proc.url + "/v1/chat/completions", body, concurrency, seconds, expect=expect,
                     reject=reject)
    result["cpu_ms_per_request"] = {"server": 1000 * (system.groups_cpu({proc.pid}) - before)
                                    / max(result["good"], 1)}
    result["other_cpu_pct"] = 0.0
    return result


def measure(args: argparse.Namespace, wrk: Wrk, pyspy: str | None) -> dict[str, Any]:
    """Every load, every server in alternating rounds; merged results and profiles."""
    rounds = max(1, args.rounds)
    seconds = max(1.0, args.duration / rounds)
    results: dict[str, Any] = {load: {} for load in LOADS}
    profiles: dict[str, Any] = {}
    with Stack(args.work_dir / "ab") as stack:
        worker = stack.start_standin(*standin_models())
        servers = _servers(args, stack, worker)
        log(f"stack up:\n{stack.summary()}")
        for load in LOADS:
            for proc in servers.values():  # warm-up
                _point(wrk, proc, load, max(1.0, args.warmup))
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for _ in range(rounds):
                for name, proc in servers.items():
                    runs[name].append(_point(wrk, proc, load, seconds))
                    time.sleep(args.pause)
            results[load] = {name: merge_runs(found) for name, found in runs.items()}
            print(table(results[load], load), flush=True)
        if pyspy:
            for name, proc in servers.items():
                profiles[name] = {load: profile(pyspy, wrk, proc, CONCURRENCY, args.profile_duration,
                                                args.work_dir, stream=load == "stream")
                                  for load in ("chat", "stream")}
        rss = {} if args.no_rss else _rss(args, stack, worker)
    return {"results": results, "profiles": profiles, "rss": rss}


def table(results: dict[str, Any], load: str) -> str:
    """One load's figures as a reStructuredText table."""
    floor = results[FLOOR]["rps"]
    rows = [["server", "req/s", "vs floor", "p50 ms", "p99 ms", "p99/p50", "server CPU ms/req",
             "rounds req/s"]]
    for name, r in results.items():
        rows.append([name, f"{r['rps']:.0f}", f"{r['rps'] / floor:.2f}×" if floor else "-",
                     f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['p99_ms'] / r['p50_ms']:.1f}",
                     f"{r['cpu_ms_per_request']['server']:.3f}",
                     ", ".join(f"{v:.0f}" for v in r.get("rounds_rps", [r["rps"]]))])
    return f"{load} at c={LOADS[load][3]}, one worker stand-in:\n\n" + _rst(rows)


def _parts_table(found: dict[str, Any], load: str) -> str:
    """The server CPU of one request under ``load``, split by part (``bench.profile.PARTS``):
    the share of each part in each server's profile times that server's CPU per request."""
    names = [name for name in found["results"][load] if (found["profiles"].get(name) or {}).get(load)]
    cells: dict[str, dict[str, str]] = {}
    for name in names:
        cpu = found["results"][load][name]["cpu_ms_per_request"]["server"]
        for part, share in found["profiles"][name][load]["parts"]:
            cells.setdefault(part, {})[name] = f"{cpu * share / 100:.3f} ({share:.0f}%)"
    rows = [["Part", *[f"{name}: ms (%)" for name in names]]]
    rows += [[part, *[by.get(name, "-") for name in names]] for part, by in cells.items()]
    rows.append(["all (server CPU ms/request)",
                 *[f"{found['results'][load][name]['cpu_ms_per_request']['server']:.3f}" for name in names]])
    return _rst(rows)


def _rst(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip(), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows[1:]]
    return "\n".join([*lines, rule, ""])


def write_rst(found: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
    """``docs/benchmarks-ab.rst``: the last ``--ab`` run, dated, with the command that made it."""
    title = f"Before and after: fastchat_api at {meta['ref']} and the working tree"
    parts = [title, "=" * len(title), "",
             f"Made by ``{meta['command']}`` on {meta['date']} (working tree at {meta['commit']}), on "
             f"{meta['machine']['cpu']} ({meta['machine']['cores']} cores); other processes used "
             f"{meta['busy_before_pct']:.0f}% of the machine as it started. See ``bench/ab.py``: on a "
             "shared machine requests/s move with the other load, the server's CPU per request much "
             "less. Run it again to refresh this page.", ""]
    for load in LOADS:
        parts += [table(found["results"][load], load)]
    for load in ("chat", "stream"):
        if any(load in (p or {}) for p in found["profiles"].values()):
            parts += [f"Server CPU of one request, {load} at c={CONCURRENCY}, by part (py-spy, "
                      "200 samples/s; the innermost frame of a known part names it, the standard "
                      "library counts for its caller):", "", _parts_table(found, load)]
    if found.get("rss"):
        rows = [["server", "peak RSS MB", "idle RSS MB", "dropped"]]
        rows += [[name, f"{r['hwm_mb']:.1f}", f"{r['idle_mb']:.1f}", str(r["dropped"])]
                 for name, r in found["rss"].items()]
        parts += [f"{found['rss_streams']} concurrent slow streams, a fresh process each:", "", _rst(rows)]
    path.write_text("\n".join(parts))
    log(f"wrote {path}")


def main(args: argparse.Namespace, wrk_binary: str, pyspy: str | None, argv: list[str] | None = None) -> int:
    """Measure, print the tables, keep the raw results in ``.bench/`` and (unless
    ``--no-docs``) write ``docs/benchmarks-ab.rst``; 1 if a process failed."""
    args.work_dir.mkdir(parents=True, exist_ok=True)
    meta = {"ref": args.ab, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
            "commit": source.git_commit(), "machine": system.machine(), "busy_before_pct": system.idle_check()}
    try:
        found = measure(args, Wrk(wrk_binary), pyspy)
        found["rss_streams"] = args.streams
    except (StackError, RuntimeError) as exc:
        log(f"benchmark failed: {exc}")
        return 1
    bad = {(load, name): r["bad"] for load, rs in found["results"].items() for name, r in rs.items()
           if r["bad"]}
    if bad:
        log(f"failed answers: {bad}")
    path = args.work_dir / f"results-ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({**found, "meta": meta}, indent=2, default=str))
    log(f"raw results in {path}")
    if not args.no_docs:
        write_rst(found, meta, ROOT / "docs" / "benchmarks-ab.rst")
    return 0 if not bad else 1
