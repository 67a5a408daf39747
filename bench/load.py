"""The load: what every request asks, and wrk sending it.

wrk is the load generator because a Python client would be slower than the server it
measures; ``bench/wrk.lua`` varies every prompt (nothing can be answered from a cache) and
checks every answer, so requests/s counts only good ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "wrk.lua"

MODEL = "bench-model"          # CHUNKS pieces, at once
SLOW_MODEL = "bench-slow"      # SLOW_CHUNKS pieces, SLOW_DELAY s before each frame
JSON_MODEL = "bench-json"      # JSON_TEXT in CHUNKS pieces, at once: what follows a "{" opening
JSON_TEXT = '"name": "tok tok tok tok", "tokens": 4}'
CHUNKS = 16
SLOW_CHUNKS, SLOW_DELAY = 10, 1.0
#: ``@N@`` becomes a counter in every request.
USER_TEXT = "Hello! Who are you? Tell me about yourself in one sentence. (request @N@)"
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def standin_models() -> list[str]:
    """The worker stand-in's ``--model`` values (``NAME:PIECES:DELAY``)."""
    return [f"{MODEL}:{CHUNKS}:0", f"{SLOW_MODEL}:{SLOW_CHUNKS}:{SLOW_DELAY}",
            f"{JSON_MODEL}:{CHUNKS}:0:{JSON_TEXT}"]


def chat_body(model: str = MODEL, stream: bool = False, **extra: Any) -> str:
    """A chat request (JSON) with one user message, ``max_tokens`` 64, and the ``extra``
    fields."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": USER_TEXT}],
        "max_tokens": 64,
        "temperature": 0.7,
        **extra,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body)


def worker_body() -> str:
    """The gen_params both servers send the worker for ``chat_body()``."""
    prompt = f"{SYSTEM} USER: {USER_TEXT} ASSISTANT:"
    return json.dumps({
        "model": MODEL, "prompt": prompt, "temperature": 0.7, "logprobs": None, "top_p": 1.0,
        "top_k": -1, "presence_penalty": 0.0, "frequency_penalty": 0.0, "max_new_tokens": 64,
        "echo": False, "stop_token_ids": None, "stop": [],
    })


def count_token_body() -> str:
    """The ``/count_token`` request FastChat's server sends for ``chat_body()``."""
    return json.dumps({"model": MODEL, "prompt": f"{SYSTEM} USER: {USER_TEXT} ASSISTANT:"})


class Wrk:
    """wrk with ``bench/wrk.lua``: one thread, ``concurrency`` connections, whole seconds.

    A result is a dict: ``rps`` (good answers per second), ``requests``, ``good``, ``bad``
    (failed checks plus socket errors), ``errors`` by kind, ``first_bad`` (status and start of
    the first failed answer), ``seconds``, and ``p50_ms``, ``p90_ms``, ``p99_ms``, ``mean_ms``,
    ``max_ms`` from sending a request to the last byte of its answer.
    """

    def __init__(self, binary: str, timeout: float = 10.0) -> None:
        self.binary = binary
        self.timeout = timeout

    def start(self, url: str, body: str, concurrency: int, duration: float, *,
              expect: str = "", reject: str = "", authorization: str = "") -> tuple[subprocess.Popen, Path]:
        """Start wrk POSTing ``body`` to ``url`` (with ``authorization`` as the Authorization
        header, if given); every 200 answer must contain ``expect`` and not ``reject``. The
        process and the file its summary goes to, for :meth:`finish`."""
        out = Path(tempfile.mkstemp(prefix="wrk-", suffix=".json")[1])
        argv = [self.binary, "-t", "1", "-c", str(concurrency), "-d", f"{max(1, round(duration))}s",
                "--timeout", f"{max(1, round(self.timeout))}s", "-s", str(LUA), url]
        env = dict(os.environ, BENCH_BODY=body, BENCH_EXPECT=expect, BENCH_REJECT=reject,
                   BENCH_OUT=str(out), BENCH_AUTHORIZATION=authorization)
        popen = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        return popen, out

    def finish(self, popen: subprocess.Popen, out: Path, duration: float) -> dict[str, Any]:
        """Wait for a wrk from :meth:`start`; its result. :class:`RuntimeError` if it hangs or
        writes no summary."""
        try:
            output, _ = popen.communicate(timeout=duration + self.timeout + 30)
        except subprocess.TimeoutExpired:
            popen.kill()
            output, _ = popen.communicate()
            raise RuntimeError(f"wrk did not finish: {output[-1000:]}") from None
        try:
            raw = json.loads(out.read_text())
        except (OSError, ValueError):
            raise RuntimeError(f"wrk failed (exit {popen.returncode}): {output[-2000:]}") from None
        finally:
            with contextlib.suppress(OSError):
                out.unlink()
        return _result(raw)

    def run(self, url: str, body: str, concurrency: int, duration: float, *,
            expect: str = "", reject: str = "", authorization: str = "") -> dict[str, Any]:
        """:meth:`start` then :meth:`finish`."""
        popen, out = self.start(url, body, concurrency, duration, expect=expect, reject=reject,
                                authorization=authorization)
        return self.finish(popen, out, duration)


def _result(raw: dict[str, Any]) -> dict[str, Any]:
    """wrk.lua's summary (microseconds) as a result (seconds, milliseconds)."""
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = raw["errors"]
    return {
        "rps": raw["good"] / seconds if seconds else 0.0,
        "requests": raw["requests"],
        "good": raw["good"],
        "bad": raw["bad"] + errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "errors": errors,
        "first_bad": raw["first_bad"],
        "seconds": seconds,
        "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000, "p99_ms": lat["p99"] / 1000,
        "mean_ms": lat["mean"] / 1000, "max_ms": lat["max"] / 1000,
    }


def _weighted(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    """The runs' ``key`` dicts averaged, each run weighted by its good answers."""
    total = sum(r["good"] for r in runs if key in r) or 1
    out: dict[str, float] = {}
    for r in runs:
        for k, v in (r.get(key) or {}).items():
            out[k] = out.get(k, 0.0) + v * r["good"] / total
    return out


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one point as one: requests/s over the summed time, latency percentiles
    as the median of the runs' (wrk gives percentiles, not samples), errors summed."""
    if len(runs) == 1:
        return runs[0]
    merged = dict(runs[0])
    good = sum(r["good"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    merged.update(
        rps=good / seconds if seconds else 0.0, good=good, seconds=seconds,
        requests=sum(r["requests"] for r in runs), bad=sum(r["bad"] for r in runs),
        errors={k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]},
        first_bad=next((r["first_bad"] for r in runs if r["first_bad"]), ""),
        max_ms=max(r["max_ms"] for r in runs),
        other_cpu_pct=statistics.fmean(r["other_cpu_pct"] for r in runs),
        rounds_rps=[r["rps"] for r in runs],
    )
    for key in ("p50_ms", "p90_ms", "p99_ms", "mean_ms"):
        merged[key] = statistics.median(r[key] for r in runs)
    merged["cpu_ms_per_request"] = _weighted(runs, "cpu_ms_per_request")
    merged["cpu_cores"] = {k: statistics.fmean((r.get("cpu_cores") or {}).get(k, 0.0) for r in runs)
                           for k in (runs[0].get("cpu_cores") or {})}
    if any("upstream_calls_per_request" in r for r in runs):
        merged["upstream_calls_per_request"] = _weighted(runs, "upstream_calls_per_request")
    return merged


def describe(r: dict[str, Any]) -> str:
    """One line: requests/s, p50, p99, and failures if any."""
    text = f"{r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
    if r["bad"]:
        text += f"  ** {r['bad']} failed (errors {r['errors']})"
        if r["first_bad"]:
            text += f": {r['first_bad'][:160]!r}"
    return text
