"""aiohttp clients for what wrk cannot see: when the first token of a stream arrives, and how
many slow streams a server holds at once and in how much memory."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import statistics
import time
from typing import Any

import aiohttp

from .load import MODEL, SLOW_CHUNKS, SLOW_MODEL, chat_body
from .system import proc_status

_JSON = {"Content-Type": "application/json"}


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, interpolated; None if empty."""
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def read_stream(resp: aiohttp.ClientResponse, t0: float) -> tuple[float | None, int, bool, bool]:
    """A chat stream read to its end: (seconds from ``t0`` (``time.perf_counter()``) to the
    first content delta, content events, saw [DONE], saw an error)."""
    first = None
    contents = 0
    done = error = False
    async for line in resp.content:
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            done = True
            continue
        try:
            obj = json.loads(payload)
        except ValueError:
            error = True
            continue
        if "error" in obj or "error_code" in obj:
            error = True
            continue
        choices = obj.get("choices") or []
        if choices and (choices[0].get("delta") or {}).get("content"):
            contents += 1
            if first is None:
                first = time.perf_counter() - t0
    return first, contents, done, error


async def ttft_probe(url: str, concurrency: int, duration: float) -> dict[str, Any]:
    """Streams of ``MODEL`` back to back on ``concurrency`` connections for ``duration``
    seconds; ``samples``, ``failed`` and ``p50_ms``, ``p90_ms``, ``p99_ms``, ``mean_ms`` of the
    time to the first content event (None without samples)."""
    ttfts: list[float] = []
    failures = counter = 0
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        deadline = time.monotonic() + duration

        async def loop() -> None:
            nonlocal failures, counter
            while time.monotonic() < deadline:
                counter += 1
                body = chat_body(MODEL, stream=True).replace("@N@", f"probe-{counter}")
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=_JSON) as resp:
                        if resp.status != 200:
                            await resp.read()
                            failures += 1
                            continue
                        first, _, done, error = await read_stream(resp, t0)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    failures += 1
                    continue
                if first is None or not done or error:
                    failures += 1
                else:
                    ttfts.append(first * 1000)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return {
        "samples": len(ttfts), "failed": failures,
        "p50_ms": percentile(ttfts, 50), "p90_ms": percentile(ttfts, 90),
        "p99_ms": percentile(ttfts, 99),
        "mean_ms": statistics.fmean(ttfts) if ttfts else None,
    }


async def _sample_rss(pid: int, samples: list[int], stop: asyncio.Event) -> None:
    """``pid``'s VmRSS (kB) into ``samples`` every 0.2 s until ``stop``."""
    while not stop.is_set():
        rss = proc_status(pid).get("VmRSS")
        if rss:
            samples.append(rss)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def slow_streams(url: str, pid: int, count: int, ramp: float, timeout: float) -> dict[str, Any]:
    """``count`` streams of ``SLOW_MODEL`` opened within ``ramp`` seconds and held at once by
    the server ``pid``. Returns how many ``completed`` (every content event and [DONE]),
    ``failed``, ``incomplete``, ``dropped`` (not completed), ``reasons``, ``peak_open``,
    ``seconds`` and the server's memory in MB: ``rss_max_sampled_mb``, ``hwm_mb`` (VmHWM),
    ``rss_end_mb``."""
    ok = failed = incomplete = 0
    reasons: collections.Counter[str] = collections.Counter()
    open_now = peak_open = 0
    rss_samples: list[int] = []
    stop_sampling = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as session:

        async def one(i: int) -> None:
            nonlocal ok, failed, incomplete, open_now, peak_open
            await asyncio.sleep(ramp * i / count)
            body = chat_body(SLOW_MODEL, stream=True).replace("@N@", f"slow-{i}")
            t0 = time.perf_counter()
            opened = False
            try:
                async with session.post(url, data=body, headers=_JSON) as resp:
                    if resp.status != 200:
                        reasons[f"HTTP {resp.status}"] += 1
                        failed += 1
                        await resp.read()
                        return
                    opened = True
                    open_now += 1
                    peak_open = max(peak_open, open_now)
                    _, contents, done, error = await read_stream(resp, t0)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reasons[type(exc).__name__] += 1
                failed += 1
                return
            finally:
                if opened:
                    open_now -= 1
            if done and not error and contents == SLOW_CHUNKS:
                ok += 1
            else:
                incomplete += 1
                reasons[f"done={done} error={error} chunks={contents}"] += 1

        sampler = asyncio.create_task(_sample_rss(pid, rss_samples, stop_sampling))
        try:
            await asyncio.gather(*(one(i) for i in range(count)))
        finally:
            stop_sampling.set()
            await sampler
    status = proc_status(pid)
    return {
        "streams": count, "completed": ok, "failed": failed, "incomplete": incomplete,
        "dropped": count - ok, "reasons": dict(reasons), "peak_open": peak_open,
        "seconds": time.monotonic() - started,
        "rss_max_sampled_mb": max(rss_samples) / 1024 if rss_samples else None,
        "hwm_mb": status.get("VmHWM", 0) / 1024,
        "rss_end_mb": status.get("VmRSS", 0) / 1024,
    }
