"""bench.report: the rows, the targets and docs/benchmarks.rst from a run's results."""

from __future__ import annotations

from bench import report
from bench.report import OURS, THEIRS, build_rows, build_targets, write_rst


def point(rps: float, p50: float, **extra) -> dict:
    return {"rps": rps, "p50_ms": p50, "p99_ms": 2 * p50, "concurrency": 32, **extra}


def results() -> dict:
    calls = {"worker /worker_generate": 1.0}
    theirs_calls = {"controller /list_models": 1.0, "controller /get_worker_address": 1.0,
                    "worker /count_token": 1.0, "worker /model_details": 1.0, "worker /worker_generate": 1.0}
    return {
        "servers": {
            OURS: {"chat": {1: point(1000, 1.0), 32: point(2700, 10.0, upstream_calls_per_request=calls)},
                   "stream": point(1500, 20.0), "ttft": point(0, 20.0)},
            THEIRS: {"chat": {1: point(150, 6.0), 32: point(300, 100.0, upstream_calls_per_request=theirs_calls)},
                     "stream": point(30, 900.0), "ttft": point(0, 800.0)},
        },
        "worker": {}, "floor": {},
        "added_latency": {OURS: 0.4, THEIRS: 5.0},
        "rss": {OURS: {"streams": 1000, "hwm_mb": 80.0, "dropped": 0, "peak_open": 1000, "seconds": 12.0}},
        "meta": {"date": "2026-11-29 10:00 UTC", "run_seconds": 360.0, "command": "python -m bench",
                 "commit": "abc1234",
                 "machine": {"cpu": "CPU", "cores": 2, "memory_gb": 24.0, "os": "Debian", "kernel": "6"},
                 "versions": {"python": "3.11"}, "other_load": {},
                 "args": {"duration": 10.0, "warmup": 2.0, "rounds": 3, "ttft_concurrency": 32,
                          "ttft_probes": 4, "ttft_duration": 8.0, "streams": 1000, "ramp": 1.0,
                          "gunicorn_workers": 2, "profile_duration": 10.0}},
    }


def test_rows_set_ours_beside_fastchat_with_ratios():
    rows = {row[0]: row[1:] for row in build_rows(results())}
    assert rows["chat, non-stream, c=32: requests/s"] == ["2,700.0", "300.0", "9.0×"]
    assert rows["chat, stream (16 chunks), c=32: requests/s"] == ["1,500.0", "30.0", "50.0×"]
    assert rows["chat, non-stream, c=32: upstream calls per request"] == [
        "controller 0.00 + worker 1.00", "controller 2.00 + worker 3.00", ""]
    assert rows["1000 concurrent slow streams: peak RSS (MB)"][0] == "80.0"


def test_targets_pass_miss_or_are_not_measured():
    data = results()
    assert [ok for *_, ok in build_targets(data)] == [True, True, True, True]
    data["added_latency"][OURS] = 0.6
    del data["rss"]
    assert [ok for *_, ok in build_targets(data)] == [True, True, False, None]


def test_the_page_has_the_table_the_targets_and_how_to_reproduce(tmp_path):
    page = tmp_path / "benchmarks.rst"
    write_rst(results(), page, png=None)
    text = page.read_text()
    assert text.startswith("Benchmarks: fastchat_api vs FastChat's openai_api_server\n=====")
    assert "   * - chat, non-stream, c=32: requests/s\n     - 2,700.0\n     - 300.0\n     - 9.0×" in text
    assert "     - pass" in text and ".. image::" not in text
    assert "    python -m bench\n" in text and "This run: ``python -m bench`` at commit ``abc1234``." in text
    assert report.gunicorn_label(2) not in text  # no gunicorn rows were measured
