"""bench.load: wrk's summary read, and rounds of one point merged."""

from __future__ import annotations

import json

from bench.load import _result, chat_body, merge_runs


def run(good: int, seconds: float, p50: float, **extra) -> dict:
    return {"rps": good / seconds, "requests": good + 1, "good": good, "bad": 1,
            "errors": {"connect": 0, "read": 1, "write": 0, "status": 0, "timeout": 0},
            "first_bad": "", "seconds": seconds, "p50_ms": p50, "p90_ms": p50, "p99_ms": p50,
            "mean_ms": p50, "max_ms": p50 * 2, "other_cpu_pct": 10.0,
            "cpu_ms_per_request": {"server": p50}, "cpu_cores": {"server": 1.0}, **extra}


def test_wrk_summary_in_seconds_and_milliseconds():
    raw = {"requests": 12, "duration_us": 2_000_000, "good": 10, "bad": 1, "first_bad": "500 no",
           "errors": {"connect": 0, "read": 0, "write": 0, "status": 1, "timeout": 1},
           "latency_us": {"p50": 1500, "p90": 2000, "p99": 3000, "mean": 1600, "max": 9000}}
    result = _result(raw)
    assert result["rps"] == 5.0 and result["seconds"] == 2.0
    assert result["bad"] == 2  # the failed check and the timeout; status errors are checks too
    assert (result["p50_ms"], result["p99_ms"], result["max_ms"]) == (1.5, 3.0, 9.0)


def test_rounds_merge_over_their_summed_time_with_median_latencies():
    merged = merge_runs([run(100, 1.0, 1.0), run(300, 1.0, 3.0), run(200, 2.0, 2.0)])
    assert merged["rps"] == 600 / 4.0
    assert merged["p50_ms"] == 2.0 and merged["max_ms"] == 6.0
    assert merged["errors"]["read"] == 3 and merged["bad"] == 3
    assert merged["rounds_rps"] == [100.0, 300.0, 100.0]
    assert merged["cpu_ms_per_request"]["server"] == (100 * 1 + 300 * 3 + 200 * 2) / 600


def test_every_request_can_differ():
    body = json.loads(chat_body(stream=True))
    assert body["stream"] is True and "@N@" in body["messages"][0]["content"]
