"""bench.report: the rows, the targets and docs/benchmarks.rst from a run's results."""

from __future__ import annotations

from bench import report
from bench.report import FLOOR, OURS, THEIRS, build_rows, build_targets, write_rst


def point(rps: float, p50: float, cpu: dict | None = None, **extra) -> dict:
    return {"rps": rps, "p50_ms": p50, "p99_ms": 2 * p50, "concurrency": 32,
            "cpu_ms_per_request": cpu or {}, **extra}


def results() -> dict:
    calls = {"worker /worker_generate": 1.0}
    theirs_calls = {"controller /list_models": 1.0, "controller /get_worker_address": 1.0,
                    "worker /count_token": 1.0, "worker /model_details": 1.0, "worker /worker_generate": 1.0}
    return {
        "servers": {
            OURS: {"chat": {1: point(1000, 1.0), 32: point(2700, 10.0, {OURS: 0.3}, upstream_calls_per_request=calls),
                            128: point(2500, 50.0), 256: point(2400, 100.0)},
                   "stream": point(1500, 20.0, {OURS: 0.5}), "ttft": point(0, 20.0)},
            THEIRS: {"chat": {1: point(150, 6.0), 32: point(300, 100.0, upstream_calls_per_request=theirs_calls)},
                     "stream": point(30, 900.0), "ttft": point(0, 800.0)},
        },
        "worker": {},
        "floor": {1: point(1100, 0.98), 32: point(3000, 9.0, {FLOOR: 0.2}), "stream": point(1700, 18.0, {FLOOR: 0.4})},
        "features": {"plain request": point(2600, 11.0, {"fastchat_api (keys)": 0.35}),
                     "response_format json_object": point(1300, 22.0, {"fastchat_api (keys)": 0.70}),
                     "tools (one function)": {"skipped": "HTTP 400: tools are not supported"}},
        "added_latency": {OURS: 0.4, THEIRS: 5.0},
        "rss": {OURS: {"streams": 1000, "hwm_mb": 50.0, "dropped": 0, "peak_open": 1000, "seconds": 12.0}},
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
    assert rows["1000 concurrent slow streams: peak RSS (MB)"][0] == "50.0"


def test_targets_pass_miss_or_are_not_measured():
    data = results()
    assert [ok for *_, ok in build_targets(data)] == [True, True, True, True, True, True, True, True, True]
    data["added_latency"][OURS] = 0.6
    del data["rss"]
    data["floor"][32]["rps"] = 3100  # 2700 is 0.87× of it
    data["servers"][OURS]["chat"][256]["p99_ms"] = 301
    del data["servers"][OURS]["chat"][128]
    assert [ok for *_, ok in build_targets(data)] == [True, True, False, None, False, True, True, None, False]


def test_the_floor_rows_give_our_ratio_and_both_cpu_costs():
    rows = {row[0]: row[1:] for row in build_rows(results())}
    assert rows["floor: chat, non-stream, c=32: requests/s, p50 / p99 (ms)"] == [
        "3,000.0, 9.00 / 18.00", "", "0.90× ours / floor"]
    assert rows["floor: chat, stream (16 chunks), c=32: server CPU ms per request (ours / floor)"] == [
        "0.500 / 0.400", "", "+0.100 ms ours"]


def test_each_feature_is_set_beside_the_plain_request_or_said_skipped():
    rows = {row[0]: row[1:] for row in build_rows(results())}
    label = "chat c=32 with keys on, {}: requests/s, p50 (ms), server CPU ms/request"
    assert rows[label.format("plain request")] == ["2,600.0, 11.00, 0.350", "", ""]
    assert rows[label.format("response_format json_object")] == [
        "1,300.0, 22.00, 0.700", "", "0.50× plain, +0.350 ms CPU"]
    assert rows["chat c=32 with keys on, tools (one function)"] == [
        "skipped", "", "HTTP 400: tools are not supported"]


def test_the_page_has_the_table_the_targets_and_how_to_reproduce(tmp_path):
    page = tmp_path / "benchmarks.rst"
    write_rst(results(), page, png=None)
    text = page.read_text()
    assert text.startswith("Benchmarks: fastchat_api vs FastChat's openai_api_server\n=====")
    assert "   * - chat, non-stream, c=32: requests/s\n     - 2,700.0\n     - 300.0\n     - 9.0×" in text
    assert "     - pass" in text and ".. image::" not in text
    assert "    python -m bench\n" in text and "This run: ``python -m bench`` at commit ``abc1234``." in text
    assert report.gunicorn_label(2) not in text  # no gunicorn rows were measured


def test_the_page_says_what_stands_between_ours_and_the_floor_and_splits_the_profile(tmp_path):
    data = results()
    prof = {"load": {"rps": 2000.0}, "busy_pct": 100.0, "samples": 3000, "parts": [("aiohttp server", 40.0), ("marshmallow", 10.0)],
            "inclusive": [("handle (fastchat_api/schemas.py)", 60.0)], "self": [("load (marshmallow)", 5.0)]}
    data["profile"] = {"chat": prof, "stream": None}
    page = tmp_path / "benchmarks.rst"
    write_rst(data, page, png=None)
    text = page.read_text()
    assert ("Against the floor: a non-stream request costs our server 0.300 ms of CPU at c=32, the floor "
            "0.200 ms; a stream costs our server 0.500 ms of CPU at c=32, the floor 0.400 ms.") in text
    assert "   * - marshmallow\n     - 10.0\n     - 0.030\n" in text  # 10% of 0.3 ms
    assert "benchmarks-ab.rst" in text
