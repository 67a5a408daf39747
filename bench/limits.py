"""``python -m bench --limits``: what a request costs in each mode of keys for teams.

Three gateways of ours in front of one worker stand-in (its own controller; FastChat is not
needed) take turns under the same chat load (wrk, 32 connections, ``--duration`` seconds per
mode in ``--rounds`` turns):

* ``plain key``: a key without attributes (the check of every keyed deployment);
* ``limits in process``: a key with ``rpm``, ``tpm`` and ``max_parallel`` too high to refuse
  anything, so that every request is checked, charged, settled and freed, in the process;
* ``limits in Redis``: the same key, the counters in a ``redis-server`` on loopback.

For each: requests/s, latency, and the CPU each request cost the gateway process (and Redis),
whose difference from the plain key is the limits' cost per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import yaml

from devstack.processes import ManagedProcess, StackError
from devstack.stack import Stack, gateway_command

from . import log, system
from .load import Wrk, chat_body, merge_runs, standin_models

PLAIN, LIMITED = "sk-bench-plain", "sk-bench-limited"
HUGE = 10**12  # a limit no run reaches
CONCURRENCY = 32
LIMITED_KEY = {"key": LIMITED, "name": "bench", "rpm": HUGE, "tpm": HUGE, "max_parallel": 10**6}
MODES = {"plain key": PLAIN, "limits in process": LIMITED, "limits in Redis": LIMITED}


def _gateway(stack: Stack, worker: str, name: str, limits: dict[str, Any]) -> ManagedProcess:
    """Our server in front of ``worker`` with both keys and these ``limits`` settings."""
    config = stack.directory / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "auth": {"api_keys": [PLAIN], "keys": [LIMITED_KEY]}, "limits": limits,
        "logging": {"access_format": "off", "level": "WARNING"}}))
    port = stack.free_port()
    url = f"http://{stack.host}:{port}"
    argv = gateway_command(port, worker, python=sys.executable) + ["--config", str(config)]
    return stack.start_process(name, argv, ready=f"{url}/health", port=port, url=url)


def _point(wrk: Wrk, proc: ManagedProcess, key: str, concurrency: int, seconds: float,
           redis: ManagedProcess) -> dict[str, Any]:
    """One run: wrk's result with the gateway's and Redis's CPU per good answer (ms)."""
    before = system.groups_cpu({proc.pid}), system.groups_cpu({redis.pid})
    result = wrk.run(proc.url + "/v1/chat/completions", chat_body(), concurrency, seconds,
                     expect="chat.completion", authorization=f"Bearer {key}")
    done = max(result["good"], 1)
    result["cpu_ms_per_request"] = {
        "gateway": 1000 * (system.groups_cpu({proc.pid}) - before[0]) / done,
        "redis": 1000 * (system.groups_cpu({redis.pid}) - before[1]) / done,
    }
    result["other_cpu_pct"] = 0.0
    return result


def measure(args: argparse.Namespace, wrk: Wrk) -> dict[str, Any]:
    """Every mode, in alternating rounds; the merged result of each."""
    concurrency = CONCURRENCY
    rounds = max(1, args.rounds)
    seconds = max(1.0, args.duration / rounds)
    with Stack(args.work_dir / "limits") as stack:
        worker = stack.start_standin(*standin_models())
        redis = stack.start_redis()
        gateways = {
            "plain key": _gateway(stack, worker.url, "gateway-plain", {}),
            "limits in process": _gateway(stack, worker.url, "gateway-memory", {}),
            "limits in Redis": _gateway(stack, worker.url, "gateway-redis", {"redis_url": redis.url}),
        }
        log(f"stack up:\n{stack.summary()}")
        for mode, proc in gateways.items():  # warm-up
            wrk.run(proc.url + "/v1/chat/completions", chat_body(), concurrency, max(1.0, args.warmup),
                    expect="chat.completion", authorization=f"Bearer {MODES[mode]}")
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in gateways}
        for _ in range(rounds):
            for mode, proc in gateways.items():
                runs[mode].append(_point(wrk, proc, MODES[mode], concurrency, seconds, redis))
                time.sleep(args.pause)
    return {mode: merge_runs(found) for mode, found in runs.items()}


def table(results: dict[str, Any], concurrency: int) -> str:
    """The figures as a reStructuredText table."""
    plain = results["plain key"]["cpu_ms_per_request"]["gateway"]
    rows = [("mode", "req/s", "p50 ms", "p99 ms", "gateway CPU µs/req", "vs plain µs", "Redis CPU µs/req")]
    for mode, r in results.items():
        cpu = r["cpu_ms_per_request"]
        rows.append((mode, f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                     f"{1000 * cpu['gateway']:.0f}", f"{1000 * (cpu['gateway'] - plain):+.0f}",
                     f"{1000 * cpu.get('redis', 0):.0f}" if mode.endswith("Redis") else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows[1:]]
    return "\n".join([f"Chat at c={concurrency}, one worker stand-in:", "", *lines, rule])


def main(args: argparse.Namespace, wrk_binary: str) -> int:
    """Measure, print the table, keep the raw results in ``.bench/``; 1 if a process failed."""
    args.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = measure(args, Wrk(wrk_binary))
    except (StackError, RuntimeError) as exc:
        log(f"benchmark failed: {exc}")
        return 1
    bad = {mode: r["bad"] for mode, r in results.items() if r["bad"]}
    if bad:
        log(f"failed answers: {bad}: {[r['first_bad'] for r in results.values() if r['bad']]}")
    print(table(results, CONCURRENCY))
    path = args.work_dir / f"results-limits-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"results": results, "machine": system.machine(),
                                "rounds_rps": {m: r.get("rounds_rps") for m, r in results.items()},
                                "median_p50_ms": statistics.median(r["p50_ms"] for r in results.values())},
                               indent=2, default=str))
    log(f"raw results in {path}")
    return 0 if not bad else 1
