"""The run: which processes start, and which points are measured in which order.

Every child runs in one :class:`devstack.stack.Stack`, so all are stopped at the end, even on
Ctrl-C. The servers compared take turns within each point, so that a burst of outside load hits
them alike. Results go to ``.bench/results-*.json``, the table to stdout, and (unless
``--no-docs``) ``docs/benchmarks.rst`` and ``docs/bench-throughput.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import re
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from devstack.processes import ManagedProcess, StackError
from devstack.stack import Stack, gateway_command

from . import ROOT, ab, features, limits, log, report, source, system, tools
from .load import (CHUNKS, JSON_MODEL, MODEL, SLOW_CHUNKS, SLOW_DELAY, SLOW_MODEL, Wrk, chat_body, count_token_body,
                   describe, merge_runs, standin_models, worker_body)
from .probes import slow_streams, ttft_probe
from .profile import profile
from .report import FLOOR, OURS, THEIRS

HOST = "127.0.0.1"
FLOOR_PROXY = ROOT / "bench" / "floor_proxy.py"
DOCS = ROOT / "docs"


class Bench:
    """The processes of one run and the measurements made against them."""

    def __init__(self, args: argparse.Namespace, stack: Stack, wrk: Wrk, code: Path) -> None:
        self.args = args
        self.code = code  # the directory holding the fastchat_api/ and config/ measured
        self.env = {} if code == ROOT else {"PYTHONPATH": str(code)}
        self.stack = stack
        self.wrk = wrk
        self.worker: ManagedProcess | None = None
        self.floor: ManagedProcess | None = None
        self.servers: dict[str, ManagedProcess] = {}
        self.cpu = system.CpuMeter(lambda: [p.pid for p in stack.processes])
        self.other_load: list[float] = []

    # -- processes -----------------------------------------------------------------------------
    def start(self) -> None:
        """Controller, stand-in, floor proxy, our server and FastChat's."""
        stack = self.stack
        started = time.monotonic()
        stack.start_controller()
        self.worker = stack.start_standin(*standin_models(), controller_url=stack.controller_url,
                                          heartbeat=0)
        stack.wait_for_models([MODEL, SLOW_MODEL, JSON_MODEL], timeout=30)
        self.floor = stack.start_gateway(
            argv=lambda port, _: [sys.executable, str(FLOOR_PROXY), "--host", HOST, "--port", str(port),
                                  "--worker", self.worker.url],
            name="floor-proxy")
        self.servers[FLOOR] = self.floor
        self.servers[OURS] = self.start_ours("gateway")
        self.servers[THEIRS] = stack.start_openai_api_server()
        log(f"stack up in {time.monotonic() - started:.1f} s:\n{stack.summary()}")

    def start_ours(self, name: str) -> ManagedProcess:
        """Our server (this interpreter, the code measured), default configuration."""
        return self.stack.start_gateway(
            argv=lambda port, controller: gateway_command(port, controller, python=sys.executable),
            name=name, env=self.env)

    def start_gunicorn(self, workers: int) -> ManagedProcess:
        """Our server under gunicorn with ``workers`` processes (config/gunicorn.conf.py)."""
        config = self.stack.directory / "bench-gunicorn.yaml"
        config.write_text(f"server:\n  host: {HOST}\ncontroller:\n  address: {self.stack.controller_url}\n")
        port = self.stack.free_port()
        env = {
            **self.env,
            "FASTCHAT_API_CONFIG": str(config),
            "FASTCHAT_API_BIND": f"{HOST}:{port}",
            "WEB_CONCURRENCY": str(workers),
            # gunicorn >= 25.1 puts its control socket there (else in ~/.gunicorn)
            "RUNTIME_DIRECTORY": str(self.stack.directory),
        }
        argv = [sys.executable, "-m", "gunicorn", "-c", str(self.code / "config" / "gunicorn.conf.py")]
        return self.stack.start_gateway(port, argv=argv, name=f"gunicorn-{workers}", env=env)

    def check_alive(self) -> None:
        """The processes in use must still run (servers stopped on purpose are not checked)."""
        for proc in [self.stack.controller, self.worker, self.floor, *self.servers.values()]:
            if proc is not None and not proc.alive():
                raise proc.failure(f"exited with code {proc.returncode}")

    # -- accounting ----------------------------------------------------------------------------
    def _parts(self) -> dict[str, int]:
        """Process groups whose CPU is counted per point: the controller, the stand-in and
        every running API server (a group holds gunicorn's workers too)."""
        parts = {"controller": self.stack.controller.pid, "worker stand-in": self.worker.pid}
        parts.update({name: proc.pid for name, proc in self.servers.items() if proc.alive()})
        return parts

    def _calls(self) -> tuple[dict[str, int], int]:
        """The stand-in's requests by path so far, and the size of the controller's log."""
        try:
            with urllib.request.urlopen(self.worker.url + "/standin/calls", timeout=5) as resp:
                calls = json.loads(resp.read())
        except (OSError, ValueError):
            calls = {}
        return calls, self.stack.controller.log_path.stat().st_size

    def _calls_since(self, since: tuple[dict[str, int], int], requests: int) -> dict[str, float]:
        """Upstream calls per request since ``since``: the stand-in's own counts, and the
        controller's routes counted in its (uvicorn) access log."""
        calls0, offset = since
        time.sleep(0.3)  # let the controller's log catch up
        calls1, _ = self._calls()
        delta = {k: v - calls0.get(k, 0) for k, v in calls1.items()}
        # Per generation started (one per request at n=1): requests still running at either
        # end of the window are counted consistently.
        generations = delta.get("/worker_generate", 0) + delta.get("/worker_generate_stream", 0)
        requests = generations or requests
        out = {f"worker {k}": v / requests for k, v in delta.items() if v > 0}
        with open(self.stack.controller.log_path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
        for route in re.findall(r'"POST (/[a-z_]+) HTTP', text):
            out[f"controller {route}"] = out.get(f"controller {route}", 0) + 1 / requests
        return dict(sorted(out.items()))

    # -- measurements --------------------------------------------------------------------------
    def warm_up(self, label: str, url: str, body: str, concurrency: int, **checks: str) -> None:
        """``--warmup`` seconds of load; :class:`StackError` if no answer was good."""
        if self.args.warmup > 0:
            warm = self.wrk.run(url, body, concurrency, self.args.warmup, **checks)
            if warm["good"] == 0 and warm["bad"] > 0:
                raise StackError(f"{label}: no good answer during the warm-up: {warm['first_bad']!r}")

    def measure(self, label: str, url: str, body: str, concurrency: int, *,
                expect: str = "", reject: str = "", duration: float | None = None, authorization: str = "",
                count_calls: bool = False, warmup: bool = True, quiet: bool = False) -> dict[str, Any]:
        """One point: wrk's result with the CPU used per request by each part
        (``cpu_ms_per_request``, ``cpu_cores``), ``other_cpu_pct``, ``concurrency`` and, with
        ``count_calls``, ``upstream_calls_per_request``."""
        duration = duration or self.args.duration
        self.check_alive()
        if warmup:
            self.warm_up(label, url, body, concurrency, expect=expect, reject=reject,
                         authorization=authorization)
        meter = self.cpu.start()
        calls = self._calls() if count_calls else None
        parts = self._parts()
        before = {k: system.groups_cpu({pid}) for k, pid in parts.items()}
        wrk_before = system.children_cpu()
        result = self.wrk.run(url, body, concurrency, duration, expect=expect, reject=reject,
                              authorization=authorization)
        spent = {k: system.groups_cpu({pid}) - before[k] for k, pid in parts.items()}
        spent["wrk"] = system.children_cpu() - wrk_before
        done = max(result["good"], 1)
        result["cpu_ms_per_request"] = {k: 1000 * v / done for k, v in spent.items() if v > 0.01}
        result["cpu_cores"] = {k: v / result["seconds"] for k, v in spent.items() if v > 0.01}
        result["other_cpu_pct"] = self.cpu.other_pct(meter)
        if calls is not None:
            result["upstream_calls_per_request"] = self._calls_since(calls, done)
        self.other_load.append(result["other_cpu_pct"])
        result["concurrency"] = concurrency
        if not quiet:
            self.show(label, result)
        time.sleep(self.args.pause)
        return result

    @staticmethod
    def show(label: str, result: dict[str, Any]) -> None:
        busy = result["other_cpu_pct"]
        rounds = result.get("rounds_rps")
        log(f"{label:<44} c={result['concurrency']:<4} {describe(result)}"
            + (f"  (rounds: {', '.join(f'{v:.0f}' for v in rounds)} req/s)" if rounds and len(rounds) > 1 else "")
            + (f"  [other processes used {busy:.0f}% of the machine]" if busy >= 10 else ""))

    def compare(self, names: list[str], label: str, path: str, body: str, concurrency: int,
                checks_of: dict[str, dict[str, str]] | None = None, **kw: Any) -> dict[str, dict[str, Any]]:
        """The same point for several servers, in alternating rounds (A B A B ...); results
        merged per server. ``checks_of`` replaces the answer checks for some servers."""
        rounds = max(1, self.args.rounds)
        duration = max(1, round(self.args.duration / rounds))
        kw_of = {name: {**kw, **(checks_of or {}).get(name, {})} for name in names}
        for name in names:  # warm-ups first, all of them
            checks = {k: kw_of[name][k] for k in ("expect", "reject") if k in kw_of[name]}
            self.warm_up(f"{name}: {label}", self.servers[name].url + path, body, concurrency, **checks)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for _ in range(rounds):
            for name in names:
                runs[name].append(self.measure(f"{name}: {label}", self.servers[name].url + path, body,
                                               concurrency, duration=duration, warmup=False,
                                               quiet=True, **kw_of[name]))
        merged = {name: merge_runs(runs[name]) for name in names}
        for name in names:
            self.show(f"{name}: {label}", merged[name])
        return merged

    def chat(self, names: list[str], concurrency: int) -> dict[str, dict[str, Any]]:
        """Non-stream chat; upstream calls counted at c=32."""
        return self.compare(names, "chat", "/v1/chat/completions", chat_body(), concurrency,
                            expect="chat.completion", count_calls=concurrency == 32)

    def stream(self, names: list[str], concurrency: int) -> dict[str, dict[str, Any]]:
        """Streamed chat, to the last byte. The floor relays the worker's frames as they are,
        each with its ``"error_code": 0``: only an ``"error"`` key is a failure there."""
        return self.compare(names, f"chat stream ({CHUNKS} chunks)", "/v1/chat/completions",
                            chat_body(stream=True), concurrency, expect="data: [DONE]", reject='"error',
                            checks_of={FLOOR: {"reject": '"error"'}})

    def ttft(self, name: str, concurrency: int, probes: int) -> dict[str, Any]:
        """Time to first token: wrk holds ``concurrency - probes`` streams while the probe runs
        ``probes``."""
        url = self.servers[name].url + "/v1/chat/completions"
        duration = self.args.ttft_duration
        popen, out = self.wrk.start(url, chat_body(stream=True), concurrency - probes, duration + 1,
                                    expect="data: [DONE]", reject='"error')
        try:
            time.sleep(0.5)
            probe = asyncio.run(ttft_probe(url, probes, duration))
        finally:
            background = self.wrk.finish(popen, out, duration + 1)
        probe["background"] = background
        probe["concurrency"] = concurrency
        log(f"{name + ': time to first token':<44} c={concurrency:<4} p50 {probe['p50_ms'] or 0:7.2f} ms  "
            f"p99 {probe['p99_ms'] or 0:7.2f} ms  ({probe['samples']} probes, {probe['failed']} failed; "
            f"wrk c={concurrency - probes}: {background['rps']:.0f} req/s, {background['bad']} failed)")
        time.sleep(self.args.pause)
        return probe

    def rss(self, name: str, start: Callable[[], ManagedProcess]) -> dict[str, Any]:
        """A fresh server from ``start()`` holding ``--streams`` slow streams; its memory."""
        proc = start()
        try:
            url = proc.url + "/v1/chat/completions"
            # One stream first, so that caches and pools exist, as in a server that has run.
            asyncio.run(slow_streams(url, proc.pid, 1, 0, 60))
            idle = system.proc_status(proc.pid)
            result = asyncio.run(slow_streams(url, proc.pid, self.args.streams, self.args.ramp,
                                              timeout=(SLOW_CHUNKS + 1) * SLOW_DELAY + 60))
            result["idle_mb"] = idle.get("VmRSS", 0) / 1024
            result["hwm_before_mb"] = idle.get("VmHWM", 0) / 1024
        finally:
            proc.stop()
        log(f"{name + ': ' + str(self.args.streams) + ' slow streams':<44} "
            f"peak RSS (VmHWM) {result['hwm_mb']:.1f} MB (idle {result['idle_mb']:.1f} MB), "
            f"{result['completed']} complete, {result['dropped']} dropped, "
            f"{result['peak_open']} open at once, {result['seconds']:.1f} s"
            + (f", reasons {result['reasons']}" if result["reasons"] else ""))
        return result

# -- the order of the points -------------------------------------------------------------------


def measure_alone(bench: Bench, results: dict[str, Any]) -> None:
    """What the servers are measured against: the stand-in and the controller alone."""
    worker = bench.worker.url
    alone = results["worker"]
    alone["generate_c1"] = bench.measure("worker stand-in: /worker_generate", worker + "/worker_generate",
                                         worker_body(), 1, expect='"finish_reason"')
    alone["generate_c32"] = bench.measure("worker stand-in: /worker_generate", worker + "/worker_generate",
                                          worker_body(), 32, expect='"finish_reason"')
    alone["count_token_c1"] = bench.measure("worker stand-in: /count_token", worker + "/count_token",
                                            count_token_body(), 1, expect='"count"')
    alone["controller_c1"] = bench.measure(
        "controller: /get_worker_address", bench.stack.controller_url + "/get_worker_address",
        json.dumps({"model": MODEL}), 1, expect='"address"')


def measure_servers(bench: Bench, results: dict[str, Any]) -> None:
    """Ours and FastChat's at every concurrency, in turns with the floor proxy (what aiohttp
    alone costs: a proxy that only forwards) at 1 and 32 and for streams; time to first token;
    then the added latency over the worker."""
    args, servers = bench.args, results["servers"]
    for c in args.concurrencies:
        for name, result in bench.chat([OURS, THEIRS, FLOOR] if c in (1, 32) else [OURS, THEIRS], c).items():
            (results["floor"] if name == FLOOR else servers[name]["chat"])[c] = result
        if c == 1:  # the worker again, right after: the baseline of the added latency
            results["worker"]["generate_c1_after"] = bench.measure(
                "worker stand-in: /worker_generate", bench.worker.url + "/worker_generate",
                worker_body(), 1, expect='"finish_reason"')
    for name, result in bench.stream([OURS, THEIRS, FLOOR], args.stream_concurrency).items():
        (results["floor"] if name == FLOOR else servers[name])["stream"] = result
    for name in (OURS, THEIRS):
        servers[name]["ttft"] = bench.ttft(name, args.stream_concurrency, args.ttft_probes)
    added_latency(results)


def added_latency(results: dict[str, Any]) -> None:
    """p50 at c=1 through each server minus p50 of the worker alone, and the hops' parts."""
    worker = results["worker"]
    worker_p50 = statistics.fmean([worker["generate_c1"]["p50_ms"], worker["generate_c1_after"]["p50_ms"]])
    chat_p50 = {name: results["servers"][name]["chat"][1]["p50_ms"] for name in (OURS, THEIRS)}
    results["added_latency"] = {name: p50 - worker_p50 for name, p50 in chat_p50.items()}
    results["added_latency"]["floor"] = results["floor"][1]["p50_ms"] - worker_p50
    results["added_latency_parts"] = {
        "worker /worker_generate": worker_p50,
        "worker /count_token": worker["count_token_c1"]["p50_ms"],
        "controller /get_worker_address": worker["controller_c1"]["p50_ms"],
        "floor proxy chat": results["floor"][1]["p50_ms"],
        f"{OURS} chat": chat_p50[OURS],
    }


def measure_rss(bench: Bench, results: dict[str, Any]) -> None:
    """The memory test: a fresh server of ours, then FastChat's (unless --no-fastchat-rss)."""
    results["rss"] = {OURS: bench.rss(OURS, lambda: bench.start_ours("gateway-rss"))}
    if bench.args.no_fastchat_rss:
        return
    try:
        results["rss"][THEIRS] = bench.rss(
            THEIRS, lambda: bench.stack.start_openai_api_server(name="fastchat-rss"))
    except (StackError, RuntimeError) as exc:
        log(f"FastChat memory test failed: {exc}")


def measure_gunicorn(bench: Bench, results: dict[str, Any]) -> None:
    """Our server under gunicorn: chat at every concurrency from 32, and streams."""
    label = report.gunicorn_label(bench.args.gunicorn_workers)
    proc = bench.start_gunicorn(bench.args.gunicorn_workers)
    bench.servers[label] = proc
    results["servers"][label] = {"chat": {}}
    for c in [c for c in bench.args.concurrencies if c >= 32]:
        results["servers"][label]["chat"][c] = bench.measure(
            f"{label}: chat", proc.url + "/v1/chat/completions", chat_body(), c,
            expect="chat.completion", count_calls=c == 32)
    results["servers"][label]["stream"] = bench.measure(
        f"{label}: chat stream ({CHUNKS} chunks)", proc.url + "/v1/chat/completions",
        chat_body(stream=True), bench.args.stream_concurrency, expect="data: [DONE]", reject='"error')
    proc.stop()


def measure(bench: Bench, results: dict[str, Any], pyspy: str | None) -> int:
    """Every point in order; 0, or 1 when a process failed, 130 on Ctrl-C."""
    try:
        bench.start()
        measure_alone(bench, results)
        measure_servers(bench, results)
        results["features"] = features.measure(bench)
        if pyspy:
            results["profile"] = {load: profile(pyspy, bench.wrk, bench.servers[OURS], 32,
                                                bench.args.profile_duration, bench.args.work_dir,
                                                stream=load == "stream")
                                  for load in ("chat", "stream")}
        if not bench.args.no_rss:
            measure_rss(bench, results)
        if not bench.args.no_gunicorn:
            measure_gunicorn(bench, results)
    except (StackError, RuntimeError) as exc:
        log(f"benchmark failed: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        log("stopping the stack")
    return 0


# -- the command -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench",
                                description="Benchmark fastchat_api against FastChat's own "
                                            "openai_api_server, side by side, on loopback.")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per point (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each point")
    p.add_argument("--rounds", type=int, default=None,
                   help="the servers compared take turns: each point is this many alternating runs "
                        "of duration/rounds seconds per server (default 3; 1 with --quick)")
    p.add_argument("--pause", type=float, default=0.5, help="seconds of rest between points")
    p.add_argument("--quick", action="store_true", help="3 s per point, 1 s warm-up")
    p.add_argument("--concurrency", default="1,8,32,128,256",
                   help="non-stream concurrencies (1 and 32 are always included)")
    p.add_argument("--stream-concurrency", type=int, default=32)
    p.add_argument("--ttft-probes", type=int, default=4)
    p.add_argument("--ttft-duration", type=float, default=8.0)
    p.add_argument("--streams", type=int, default=1000, help="slow streams held at once (memory test)")
    p.add_argument("--ramp", type=float, default=1.0, help="seconds over which they are opened")
    p.add_argument("--no-rss", action="store_true", help="skip the memory test")
    p.add_argument("--no-fastchat-rss", action="store_true", help="memory test of our server only")
    p.add_argument("--no-gunicorn", action="store_true", help="skip the gunicorn rows")
    p.add_argument("--gunicorn-workers", type=int, default=2)
    p.add_argument("--profile", action="store_true",
                   help="py-spy profiles of our server at c=32, non-stream and stream chat")
    p.add_argument("--profile-duration", type=float, default=10.0)
    p.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.rst and the plot")
    p.add_argument("--work-dir", type=Path, default=ROOT / ".bench", help="default .bench")
    p.add_argument("--limits", action="store_true",
                   help="only measure what keys for teams cost a request: a plain key, limits in "
                        "the process, limits in Redis (needs wrk and redis-server, not FastChat); "
                        "chat at 32 concurrent")
    p.add_argument("--ab", metavar="REF", default=None,
                   help="only compare fastchat_api/ at this git ref with the working tree (and the "
                        "floor proxy), in alternating runs: chat and stream at 32 concurrent, the "
                        "server's CPU per request (needs wrk, not FastChat); with --profile, "
                        "py-spy profiles of both")
    p.add_argument("--ref", default=None,
                   help="measure fastchat_api/ as committed at this git ref (e.g. HEAD, HEAD~3) "
                        "instead of the working tree")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.ttft_duration, args.profile_duration = 3.0, 1.0, 3.0, 5.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    args.concurrencies = sorted({int(c) for c in args.concurrency.split(",") if c.strip()} | {1, 32})
    args.ttft_concurrency = args.stream_concurrency
    if not 0 < args.ttft_probes < args.ttft_concurrency:
        p.error("--ttft-probes must be between 1 and --stream-concurrency - 1")
    args.work_dir = args.work_dir.resolve()
    return args


def meta(args: argparse.Namespace, argv: list[str] | None, bench: Bench | None, started: datetime.datetime,
         before: float, found: tools.Tools, code: Path, sha: str | None) -> dict[str, Any]:
    """When, where, what, with which arguments, and how busy the machine was."""
    load = bench.other_load if bench else []
    return {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "run_seconds": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(),
        "machine": system.machine(),
        "versions": system.versions(str(found.fastchat_python), found.wrk, source.version_of(code)),
        "commit": f"{sha[:10]} (--ref {args.ref})" if sha else source.git_commit(),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "other_load": {"before_pct": before, "mean_pct": statistics.fmean(load) if load else None,
                       "max_pct": max(load) if load else None},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every point was measured, 2 when a tool is missing."""
    args = parse_args(argv)
    if args.limits:
        return limits.main(args, tools.check_limits())
    if args.ab:
        return ab.main(args, tools.check_limits(redis=False), tools.check_pyspy() if args.profile else None,
                       argv)
    found = tools.check(args.work_dir / "fastchat-venv", docs=not args.no_docs,
                        gunicorn=not args.no_gunicorn, profile=args.profile)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    fds = tools.raise_fd_limit()
    if fds < args.streams * 3 + 100:
        log(f"only {fds} file descriptors allowed: the memory test may fail")
    code, sha = source.snapshot(args.ref, args.work_dir) if args.ref else (ROOT, None)
    if sha:
        log(f"measuring fastchat_api as committed at {args.ref} ({sha[:10]}), from {code}")
    before = system.idle_check()
    if before >= 15:
        log(f"warning: other processes already use {before:.0f}% of this machine's CPU; "
            "the numbers will be lower and noisier than on an idle machine")
    run_dir = args.work_dir / "run"
    shutil.rmtree(run_dir / "logs", ignore_errors=True)
    results: dict[str, Any] = {"servers": {OURS: {"chat": {}}, THEIRS: {"chat": {}}}, "worker": {}, "floor": {}}
    with Stack(run_dir, python=str(found.fastchat_python)) as stack:
        bench = Bench(args, stack, Wrk(found.wrk), code)
        status = measure(bench, results, found.pyspy)
    results["meta"] = meta(args, argv, bench, started, before, found, code, sha)
    raw_path = args.work_dir / f"results-{started.strftime('%Y%m%d-%H%M%S')}.json"
    raw_path.write_text(json.dumps(results, indent=2, default=str))
    if status == 0:
        report.print_table(results)
        if not args.no_docs:
            png = DOCS / "bench-throughput.png"
            report.plot(results, png)
            report.write_rst(results, DOCS / "benchmarks.rst", png)
    log(f"raw results in {raw_path}; whole run {results['meta']['run_seconds'] / 60:.1f} minutes")
    return status
