"""The results, read: a table with ratios and targets on the terminal, ``docs/benchmarks.rst``
and the plot ``docs/bench-throughput.png``.

``results`` is the dict :mod:`bench.run` builds and saves as JSON: ``servers`` (by label:
``chat`` by concurrency, ``stream``, ``ttft``), ``worker`` and ``floor`` (the stand-in, the
controller and the floor proxy measured alone), ``added_latency``, ``added_latency_parts``,
``rss``, ``profile`` and ``meta`` (date, machine, versions, arguments, other load).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import log
from .load import CHUNKS, SLOW_CHUNKS, SLOW_DELAY, SLOW_MODEL, MODEL

OURS, THEIRS, FLOOR = "fastchat_api", "FastChat", "floor"

TARGETS = {
    "chat_c32_ratio": 8.0,
    "stream_c32_ratio": 20.0,
    "added_latency_p50_ms": 0.5,
    "rss_mb": 60.0,
    "floor_chat_c32": 0.90,  # of the floor's requests/s
    "floor_c1_p50_ms": 0.03,  # p50 above the floor's
    "floor_stream_c32": 0.85,
    "tail_p99_over_p50": 3.0,  # at c=128 and c=256
}

Row = list[str]  # measurement, ours, FastChat, ratio
Target = tuple[str, str, str, "bool | None"]  # name, measured, wanted, met (None: not measured)


def gunicorn_label(workers: int) -> str:
    return f"fastchat_api, gunicorn -w {workers}"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _p50_p99(r: dict[str, Any] | None) -> str:
    return f"{_fmt(r and r['p50_ms'], 2)} / {_fmt(r and r['p99_ms'], 2)}"


def calls_text(calls: dict[str, float], detail: bool = False) -> str:
    """``controller 0.00 + worker 1.00``, or with ``detail`` every route."""
    if detail:
        return ", ".join(f"{k} {v:.2f}" for k, v in calls.items() if v >= 0.005) or "none"
    total = {side: sum(v for k, v in calls.items() if k.startswith(side + " "))
             for side in ("controller", "worker")}
    return f"controller {total['controller']:.2f} + worker {total['worker']:.2f}"


def calls_lines(results: dict[str, Any]) -> list[str]:
    """Upstream calls per request by route, one line per server and kind of request."""
    lines = []
    for name, data in results["servers"].items():
        for label, r in (("non-stream", (data.get("chat") or {}).get(32)), ("stream", data.get("stream"))):
            if r and r.get("upstream_calls_per_request"):
                lines.append(f"{name}, {label} c={r['concurrency']}: "
                             + calls_text(r["upstream_calls_per_request"], detail=True))
    return lines


# -- the table ---------------------------------------------------------------------------------


def _chat_rows(ours: dict[str, Any], theirs: dict[str, Any]) -> list[Row]:
    rows = []
    for c in sorted(set(ours.get("chat", {})) | set(theirs.get("chat", {})), key=int):
        a, b = ours.get("chat", {}).get(c), theirs.get("chat", {}).get(c)
        rows.append([f"chat, non-stream, c={c}: requests/s", _fmt(a and a["rps"]), _fmt(b and b["rps"]),
                     _fmt(_ratio(a and a["rps"], b and b["rps"])) + "×"])
        rows.append([f"chat, non-stream, c={c}: latency p50 / p99 (ms)", _p50_p99(a), _p50_p99(b),
                     _fmt(_ratio(b and b["p50_ms"], a and a["p50_ms"])) + "× lower p50"])
    return rows


def _stream_rows(ours: dict[str, Any], theirs: dict[str, Any]) -> list[Row]:
    a, b = ours.get("stream"), theirs.get("stream")
    if not (a or b):
        return []
    c = (a or b)["concurrency"]
    return [[f"chat, stream ({CHUNKS} chunks), c={c}: requests/s", _fmt(a and a["rps"]),
             _fmt(b and b["rps"]), _fmt(_ratio(a and a["rps"], b and b["rps"])) + "×"],
            [f"chat, stream, c={c}: to last byte p50 / p99 (ms)", _p50_p99(a), _p50_p99(b),
             _fmt(_ratio(b and b["p50_ms"], a and a["p50_ms"])) + "× lower p50"]]


def _at_c32(data: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    return [("chat, non-stream, c=32", data.get("chat", {}).get(32)),
            ("chat, stream, c=32", data.get("stream"))]


def _cpu_text(r: dict[str, Any], server: str) -> str:
    cpu = r["cpu_ms_per_request"]
    return " / ".join(_fmt(cpu.get(k), 3) for k in (server, "controller", "worker stand-in", "wrk"))


def _c32_rows(ours: dict[str, Any], theirs: dict[str, Any]) -> list[Row]:
    """Upstream calls, then CPU per request, at c=32."""
    pairs = [(label, a, b) for (label, a), (_, b) in zip(_at_c32(ours), _at_c32(theirs)) if a and b]
    rows = [[f"{label}: upstream calls per request", calls_text(a["upstream_calls_per_request"]),
             calls_text(b["upstream_calls_per_request"]), ""]
            for label, a, b in pairs
            if "upstream_calls_per_request" in a and "upstream_calls_per_request" in b]
    rows += [[f"{label}: CPU ms per request (server / controller / stand-in / wrk)",
              _cpu_text(a, OURS), _cpu_text(b, THEIRS),
              _fmt(_ratio(b["cpu_ms_per_request"].get(THEIRS), a["cpu_ms_per_request"].get(OURS)))
              + "× less in the server"]
             for label, a, b in pairs if a.get("cpu_ms_per_request") and b.get("cpu_ms_per_request")]
    return rows


def _ttft_rows(ours: dict[str, Any], theirs: dict[str, Any]) -> list[Row]:
    a, b = ours.get("ttft"), theirs.get("ttft")
    if not (a or b):
        return []
    return [[f"chat, stream, c={(a or b)['concurrency']}: time to first token p50 / p99 (ms)",
             _p50_p99(a), _p50_p99(b), _fmt(_ratio(b and b["p50_ms"], a and a["p50_ms"])) + "× lower p50"]]


def _added_rows(added: dict[str, float]) -> list[Row]:
    if not added:
        return []
    return [["added latency over the worker, c=1: p50 (ms)", _fmt(added.get(OURS), 2),
             _fmt(added.get(THEIRS), 2), _fmt(_ratio(added.get(THEIRS), added.get(OURS))) + "× less"]]


def _rss_rows(rss: dict[str, Any]) -> list[Row]:
    if not rss:
        return []
    a, b = rss.get(OURS), rss.get(THEIRS)
    n = (a or b)["streams"]
    return [[f"{n} concurrent slow streams: peak RSS (MB)", _fmt(a and a["hwm_mb"]), _fmt(b and b["hwm_mb"]),
             _fmt(_ratio(b and b["hwm_mb"], a and a["hwm_mb"])) + "× less"],
            [f"{n} concurrent slow streams: dropped",
             str(a["dropped"]) if a else "—", str(b["dropped"]) if b else "—", ""],
            [f"{n} concurrent slow streams: most open at once / seconds for all",
             f"{a['peak_open']} / {a['seconds']:.1f}" if a else "—",
             f"{b['peak_open']} / {b['seconds']:.1f}" if b else "—", ""]]


def _gunicorn_rows(gun: dict[str, Any], label: str, workers: int, ours: dict[str, Any],
                   theirs: dict[str, Any]) -> list[Row]:
    rows = []
    for c, r in sorted(gun.get("chat", {}).items(), key=lambda kv: int(kv[0])):
        single = ours.get("chat", {}).get(c)
        fastchat = theirs.get("chat", {}).get(c, {}).get("rps")
        rows.append([f"gunicorn, {workers} processes, chat c={c}: requests/s", _fmt(r["rps"]),
                     _fmt(fastchat), _fmt(_ratio(r["rps"], fastchat)) + "×"
                     + (f" ({_fmt(_ratio(r['rps'], single and single['rps']), 2)}× 1 process)"
                        if single else "")])
    g32 = gun.get("chat", {}).get(32)
    if g32 and g32.get("cpu_cores"):
        cores = g32["cpu_cores"]
        others = g32.get("other_cpu_pct", 0) / 100 * (os.cpu_count() or 1)
        rows.append([f"gunicorn, {workers} processes, chat c=32: CPU cores busy "
                     "(servers / controller / stand-in / wrk / other processes)",
                     " / ".join(_fmt(cores.get(k), 2) for k in (label, "controller", "worker stand-in", "wrk"))
                     + f" / {others:.2f}", "", f"of {os.cpu_count()} cores"])
    if gun.get("stream"):
        r = gun["stream"]
        fastchat = theirs.get("stream", {}).get("rps")
        rows.append([f"gunicorn, {workers} processes, stream c={r['concurrency']}: requests/s",
                     _fmt(r["rps"]), _fmt(fastchat), _fmt(_ratio(r["rps"], fastchat)) + "×"
                     + (f" ({_fmt(_ratio(r['rps'], ours['stream']['rps']), 2)}× 1 process)"
                        if ours.get("stream") else "")])
    return rows


def _floor_rows(floor: dict[Any, Any], added: dict[str, float], ours: dict[str, Any]) -> list[Row]:
    """The floor proxy, measured in turns with ours: its requests/s and latency, our ratio, and
    the CPU each request cost the two servers."""
    rows = []
    if floor.get(1) and added.get("floor") is not None:
        rows.append(["floor (bench/floor_proxy.py: aiohttp, one pooled worker call, nothing else): "
                     "added latency c=1 p50 (ms)", _fmt(added["floor"], 2), "", ""])
    points = [(f"chat, non-stream, c={c}", floor.get(c), ours.get("chat", {}).get(c)) for c in (1, 32)]
    points.append((f"chat, stream ({CHUNKS} chunks), c={(floor.get('stream') or {}).get('concurrency')}",
                   floor.get("stream"), ours.get("stream")))
    for label, f, o in points:
        if not f:
            continue
        rows.append([f"floor: {label}: requests/s, p50 / p99 (ms)",
                     f"{_fmt(f['rps'])}, {_p50_p99(f)}", "",
                     _fmt(_ratio(o and o["rps"], f["rps"]), 2) + "× ours / floor"])
        cpu = (o or {}).get("cpu_ms_per_request", {}).get(OURS)
        floor_cpu = f.get("cpu_ms_per_request", {}).get(FLOOR)
        if cpu and floor_cpu:
            rows.append([f"floor: {label}: server CPU ms per request (ours / floor)",
                         f"{cpu:.3f} / {floor_cpu:.3f}", "", f"+{cpu - floor_cpu:.3f} ms ours"])
    return rows


def _feature_rows(found: dict[str, Any]) -> list[Row]:
    """Each kind of request beside the plain one, on the same server (``bench.features``)."""
    plain = found.get("plain request") or {}
    base_cpu = plain.get("cpu_ms_per_request", {}).get("fastchat_api (keys)")
    rows = []
    for label, r in found.items():
        if "skipped" in r:
            rows.append([f"chat c=32 with keys on, {label}", "skipped", "", r["skipped"][:160]])
            continue
        cpu = r.get("cpu_ms_per_request", {}).get("fastchat_api (keys)")
        ratio = "" if r is plain else (_fmt(_ratio(r["rps"], plain.get("rps")), 2) + "× plain"
                                       + (f", {cpu - base_cpu:+.3f} ms CPU" if cpu and base_cpu else ""))
        rows.append([f"chat c=32 with keys on, {label}: requests/s, p50 (ms), server CPU ms/request",
                     f"{_fmt(r['rps'])}, {_fmt(r['p50_ms'], 2)}, {_fmt(cpu, 3)}", "", ratio])
    return rows


def _alone_rows(worker: dict[str, Any]) -> list[Row]:
    labels = (("generate_c1", "worker stand-in alone, /worker_generate c=1"),
              ("generate_c32", "worker stand-in alone, /worker_generate c=32"),
              ("count_token_c1", "worker stand-in alone, /count_token c=1"),
              ("controller_c1", "controller alone, /get_worker_address c=1"))
    return [[f"{label}: requests/s, p50 (ms)", f"{_fmt(r['rps'])}, {_fmt(r['p50_ms'], 3)}", "(same)", ""]
            for key, label in labels if (r := worker.get(key))]


def build_rows(results: dict[str, Any]) -> list[Row]:
    """The table: one row per measurement, ours beside FastChat's and their ratio."""
    servers = results["servers"]
    ours, theirs = servers.get(OURS, {}), servers.get(THEIRS, {})
    added = results.get("added_latency", {})
    workers = results["meta"]["args"]["gunicorn_workers"]
    label = gunicorn_label(workers)
    return (_chat_rows(ours, theirs) + _stream_rows(ours, theirs) + _c32_rows(ours, theirs)
            + _ttft_rows(ours, theirs) + _added_rows(added) + _rss_rows(results.get("rss", {}))
            + (_gunicorn_rows(servers[label], label, workers, ours, theirs) if label in servers else [])
            + _floor_rows(results.get("floor") or {}, added, ours)
            + _feature_rows(results.get("features") or {}) + _alone_rows(results.get("worker", {})))


def build_targets(results: dict[str, Any]) -> list[Target]:
    """The targets: the c=32 ratios, the added latency, the memory of the slow streams."""
    ours = results["servers"].get(OURS, {})
    theirs = results["servers"].get(THEIRS, {})
    r32 = _ratio(ours.get("chat", {}).get(32, {}).get("rps"), theirs.get("chat", {}).get(32, {}).get("rps"))
    rs = _ratio(ours.get("stream", {}).get("rps"), theirs.get("stream", {}).get("rps"))
    al = results.get("added_latency", {}).get(OURS)
    targets: list[Target] = [
        ("non-stream chat at c=32 vs FastChat", _fmt(r32) + "×", f"≥ {TARGETS['chat_c32_ratio']:g}×",
         None if r32 is None else r32 >= TARGETS["chat_c32_ratio"]),
        ("streaming chat at c=32 vs FastChat", _fmt(rs) + "×", f"≥ {TARGETS['stream_c32_ratio']:g}×",
         None if rs is None else rs >= TARGETS["stream_c32_ratio"]),
        ("added latency over the worker at c=1, p50", _fmt(al, 2) + " ms",
         f"≤ {TARGETS['added_latency_p50_ms']:g} ms", None if al is None else al <= TARGETS["added_latency_p50_ms"]),
    ]
    mine = results.get("rss", {}).get(OURS)
    wanted = f"≤ {TARGETS['rss_mb']:g} MB, 0 dropped"
    if mine:
        targets.append((f"{mine['streams']} concurrent slow streams",
                        f"{mine['hwm_mb']:.1f} MB, {mine['dropped']} dropped", wanted,
                        mine["hwm_mb"] <= TARGETS["rss_mb"] and mine["dropped"] == 0))
    else:
        targets.append(("1000 concurrent slow streams", "—", wanted, None))
    return targets + _floor_targets(results.get("floor") or {}, ours) + _tail_targets(ours)


def _floor_targets(floor: dict[Any, Any], ours: dict[str, Any]) -> list[Target]:
    """Ours against the floor proxy measured in the same turns."""
    chat = ours.get("chat", {})
    r32 = _ratio(chat.get(32, {}).get("rps"), (floor.get(32) or {}).get("rps"))
    rs = _ratio((ours.get("stream") or {}).get("rps"), (floor.get("stream") or {}).get("rps"))
    gap = (chat[1]["p50_ms"] - floor[1]["p50_ms"]) if chat.get(1) and floor.get(1) else None
    return [
        ("non-stream chat at c=32 vs the floor", _fmt(r32, 2) + "×", f"≥ {TARGETS['floor_chat_c32']:g}×",
         None if r32 is None else r32 >= TARGETS["floor_chat_c32"]),
        ("non-stream chat at c=1: p50 above the floor's", _fmt(gap, 3) + " ms",
         f"≤ {TARGETS['floor_c1_p50_ms']:g} ms", None if gap is None else gap <= TARGETS["floor_c1_p50_ms"]),
        ("streaming chat at c=32 vs the streaming floor", _fmt(rs, 2) + "×",
         f"≥ {TARGETS['floor_stream_c32']:g}×", None if rs is None else rs >= TARGETS["floor_stream_c32"]),
    ]


def _tail_targets(ours: dict[str, Any]) -> list[Target]:
    """p99 over p50 of non-stream chat at 128 and 256 concurrent."""
    out: list[Target] = []
    for c in (128, 256):
        r = ours.get("chat", {}).get(c)
        ratio = _ratio(r and r["p99_ms"], r and r["p50_ms"])
        out.append((f"non-stream chat at c={c}: p99 / p50",
                    f"{_fmt(ratio, 1)} ({_p50_p99(r)} ms)" if r else "—",
                    f"≤ {TARGETS['tail_p99_over_p50']:g}",
                    None if ratio is None else ratio <= TARGETS["tail_p99_over_p50"]))
    return out


def load_note(results: dict[str, Any]) -> str:
    """What processes outside the benchmark used of the machine, and what that means."""
    load = results["meta"].get("other_load") or {}
    if load.get("mean_pct") is None:
        return ""
    note = (f"CPU used by processes outside the benchmark: {load['before_pct']:.0f}% of the machine "
            f"before the run, {load['mean_pct']:.0f}% on average during the measured points "
            f"(at most {load['max_pct']:.0f}%).")
    if load["mean_pct"] >= 10 or load["before_pct"] >= 15:
        note += " The machine was not idle: absolute numbers are low and noisy; compare the ratios."
    return note


def print_table(results: dict[str, Any]) -> None:
    """The table, the targets, the parts of the added latency, the upstream calls."""
    rows = build_rows(results)
    header = ["", OURS, THEIRS, "ratio"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print()
    for r in [header, None, *rows, None]:
        print(line if r is None else
              "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print("\nTargets:")
    for name, measured, target, ok in build_targets(results):
        mark = "PASS" if ok else ("MISS" if ok is False else "n/a ")
        print(f"  {mark}  {name}: {measured} (target {target})")
    added = results.get("added_latency_parts")
    if added:
        print("\nAdded latency at c=1, p50 (ms): " + ", ".join(f"{k} {v:.3f}" for k, v in added.items()))
    if calls_lines(results):
        print("\nUpstream calls per request:\n  " + "\n  ".join(calls_lines(results)))
    print("\n" + load_note(results))
    print()


# -- the plot ----------------------------------------------------------------------------------

_STYLES = {OURS: ("tab:blue", "o"), THEIRS: ("tab:red", "s")}


def plot(results: dict[str, Any], path: Path) -> None:
    """Non-stream chat requests/s and latency against concurrency, every server, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 5.2))
    gunicorn = gunicorn_label(results["meta"]["args"]["gunicorn_workers"])
    for name, data in results["servers"].items():
        if data.get("chat"):
            _plot_server(ax1, ax2, name, data["chat"],
                         ("tab:green", "^") if name == gunicorn else _STYLES.get(name, ("gray", "x")),
                         below=name == gunicorn)
    worker = results.get("worker", {})
    if worker.get("generate_c32"):
        ax1.axhline(worker["generate_c32"]["rps"], color="gray", linestyle="--", linewidth=1,
                    label="worker stand-in alone (c=32)")
    ticks = sorted({int(c) for data in results["servers"].values() for c in (data.get("chat") or {})})
    _axes(ax1, ticks, "non-stream chat requests/s", "Throughput", fontsize=8, ncol=2)
    _axes(ax2, ticks, "latency (ms)", "Latency", fontsize=7, ncol=3)
    meta = results["meta"]
    fig.suptitle(f"fastchat_api vs FastChat openai_api_server — instant worker stand-in, "
                 f"{meta['machine']['cores']} cores, {meta['date'][:10]}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_server(ax1: Any, ax2: Any, name: str, chat: dict[Any, Any], style: tuple[str, str],
                 below: bool) -> None:
    """One server's requests/s (annotated) on ``ax1``, p50 and p99 on ``ax2``."""
    color, marker = style
    cs = sorted(chat, key=int)
    rps = [chat[c]["rps"] for c in cs]
    ax1.plot(cs, rps, marker=marker, color=color, label=name)
    for c, v in zip(cs, rps):
        ax1.annotate(f"{v:,.0f}", (c, v), textcoords="offset points",
                     xytext=(0, -12 if below else 6), ha="center", fontsize=7, color=color)
    ax2.plot(cs, [chat[c]["p50_ms"] for c in cs], marker=marker, color=color, label=f"{name} p50")
    ax2.plot(cs, [chat[c]["p99_ms"] for c in cs], marker=marker, color=color, linestyle=":",
             label=f"{name} p99")


def _axes(ax: Any, ticks: list[int], ylabel: str, title: str, fontsize: int, ncol: int) -> None:
    """Log-log axes with plain numbers, concurrency ticks, labels, grid and legend below."""
    import matplotlib.ticker

    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("concurrent connections")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False)


# -- docs/benchmarks.rst -----------------------------------------------------------------------


def _rst_table(header: list[str], rows: list[list[str]], widths: str | None = None) -> str:
    out = [".. list-table::", "   :header-rows: 1"]
    if widths:
        out.append(f"   :widths: {widths}")
    out.append("")
    for row in [header] + rows:
        for i, cell in enumerate(row):
            cell = cell.replace("*", r"\*") if cell else ""
            out.append(f"   {'* -' if i == 0 else '  -'} {cell}".rstrip())
    return "\n".join(out) + "\n"


def write_rst(results: dict[str, Any], path: Path, png: Path | None) -> None:
    """``docs/benchmarks.rst``: results and targets, profile, what runs, how it is measured,
    versions, how to reproduce. ``png`` is the plot beside it, if written."""
    title = "Benchmarks: fastchat_api vs FastChat's openai_api_server"
    parts = [title, "=" * len(title), "",
             "Both servers are driven with the same load, in the same run, against the same FastChat\n"
             "controller and the same worker stand-in, which answers at once: what is measured is the\n"
             "API server itself (its control-plane round trips, connection handling, JSON and SSE work),\n"
             "not a model. This page is written by ``python -m bench``; run it again to refresh it.\n"]
    parts += _results_section(results, png)
    if results.get("profile"):
        parts += _profile_section(results["profile"], results)
    parts += _what_runs_section(results["meta"]["args"])
    parts += _method_section(results["meta"]["args"])
    parts += ["Versions", "--------", "",
              _rst_table(["Component", "Version"],
                         [[k, str(v)] for k, v in results["meta"]["versions"].items()], "50 50")]
    parts += _reproduce_section(results["meta"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    log(f"wrote {path}")


def _results_section(results: dict[str, Any], png: Path | None) -> list[str]:
    meta = results["meta"]
    args, machine = meta["args"], meta["machine"]
    parts = ["Results", "-------", "",
             f"Run of {meta['date']} on {machine['cpu']} ({machine['cores']} cores, "
             f"{machine['memory_gb']:.0f} GB), {machine['os']}, Linux {machine['kernel']}; "
             f"{args['duration']:g} s per point after a {args['warmup']:g} s warm-up; whole run "
             f"{meta['run_seconds'] / 60:.1f} minutes.\n",
             _rst_table(["Measurement", OURS, "FastChat", "Ratio"], build_rows(results), "46 18 18 18")]
    if load_note(results):
        parts.append(load_note(results) + "\n")
    parts += ["Targets:\n",
              _rst_table(["Target", "Measured", "Wanted", "Result"],
                         [[n, m, t, "pass" if ok else ("MISS" if ok is False else "n/a")]
                          for n, m, t, ok in build_targets(results)], "40 25 20 15")]
    if _floor_note(results):
        parts.append(_floor_note(results) + "\n")
    if calls_lines(results):
        parts.append("Upstream calls per request, by route:\n\n"
                     + "\n".join(f"* {line}" for line in calls_lines(results)) + "\n")
    if results.get("added_latency_parts"):
        parts.append("Where the added latency at c=1 comes from (p50 of each hop measured alone, ms): "
                     + "; ".join(f"{k}: {v:.3f}" for k, v in results["added_latency_parts"].items())
                     + ".\n")
    if png is not None:
        parts.append(f".. image:: {png.name}\n   :alt: requests/s and latency against concurrency, both servers\n")
    return parts


def _floor_note(results: dict[str, Any]) -> str:
    """What stands between ours and the floor: the CPU each request costs the two servers, and
    what ours does that the floor leaves out."""
    floor, ours = results.get("floor") or {}, results["servers"].get(OURS, {})
    costs = []
    for label, f, o in (("a non-stream request", floor.get(32), ours.get("chat", {}).get(32)),
                        ("a stream", floor.get("stream"), ours.get("stream"))):
        a = (o or {}).get("cpu_ms_per_request", {}).get(OURS)
        b = (f or {}).get("cpu_ms_per_request", {}).get(FLOOR)
        if a and b:
            costs.append(f"{label} costs our server {a:.3f} ms of CPU at c=32, the floor {b:.3f} ms")
    if not costs:
        return ""
    return ("Against the floor: " + "; ".join(costs) + ". Where the server's core is the "
            "bottleneck, requests/s follow that ratio. The difference is what the floor leaves out: "
            "the body read within its limits and validated against the protocol (marshmallow), "
            "FastChat's rules and the conversation template, request ids, the error, key and "
            "shutdown middlewares, the access log and the metrics; for streams, each worker frame "
            "turned into an OpenAI chunk (the new text of the cumulative one, JSON-encoded), where "
            "the floor relays the frame as it is. The profile below splits our server's part.")


def _profile_section(profiles: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Where a request's CPU goes in our server, by part and by function, for each load."""
    args = results["meta"]["args"]
    parts = ["Profile of fastchat_api at c=32", "-" * 31, "",
             f"py-spy, 200 samples/s for {args['profile_duration']:g} s while wrk held 32 connections "
             "(slowed by the sampling), only while the server's thread ran. A "
             "sample counts for the innermost frame of a known part (the standard library for its "
             "caller: ``bench.profile.PARTS``); milliseconds are the share times the server's CPU per "
             "request at that point. Before and after the last optimisations: "
             "`benchmarks-ab.rst <benchmarks-ab.rst>`_.\n"]
    ours = results["servers"].get(OURS, {})
    cpu_of = {"chat": (ours.get("chat", {}).get(32) or {}).get("cpu_ms_per_request", {}).get(OURS),
              "stream": (ours.get("stream") or {}).get("cpu_ms_per_request", {}).get(OURS)}
    for load, prof in profiles.items():
        if not prof:
            continue
        cpu = cpu_of.get(load)
        parts += [f"{'Non-stream' if load == 'chat' else 'Streamed'} chat ({prof['load']['rps']:,.0f} "
                  f"requests/s while sampled, {prof['samples']:,} samples):\n",
                  _rst_table(["Part", "% of samples", "ms per request"],
                             [[part, f"{p:.1f}", _fmt(cpu and cpu * p / 100, 3)] for part, p in prof["parts"]],
                             "60 20 20"),
                  _rst_table(["Function (inclusive)", "% of samples"],
                             [[f"``{f}``", f"{p:.1f}"] for f, p in prof["inclusive"][:20]], "80 20"),
                  _rst_table(["Function (self)", "% of samples"],
                             [[f"``{f}``", f"{p:.1f}"] for f, p in prof["self"][:12]], "80 20")]
    return parts


def _what_runs_section(args: dict[str, Any]) -> list[str]:
    return ["What runs", "---------", "", (
        "* FastChat's controller, ``python -m fastchat.serve.controller`` (fschat 0.2.36, default\n"
        "  ``shortest_queue`` dispatch), from FastChat's virtualenv.\n"
        "* ``python -m devstack.standin``, the scripted FastChat worker of the tests, an aiohttp app\n"
        "  speaking FastChat's worker protocol. It registers with the controller\n"
        "  (``check_heart_beat: false``) and serves two models: "
        f"``{MODEL}`` ({CHUNKS} cumulative\n"
        f"  ``\\0``-separated frames and a final one, at once) and ``{SLOW_MODEL}`` ({SLOW_CHUNKS} frames and\n"
        f"  a final one, {SLOW_DELAY:g} s before each). It counts every prompt as 10 tokens and sends\n"
        "  vicuna_v1.1 as the template.\n"
        "* FastChat's ``python -m fastchat.serve.openai_api_server`` in ``.bench/fastchat-venv``\n"
        "  (``fschat==0.2.36 'pydantic<2' 'fastapi<0.111'``, the newest versions it runs with; no\n"
        "  torch). Per chat request it calls the controller's ``/list_models`` and\n"
        "  ``/get_worker_address``, the worker's ``/model_details`` and ``/count_token``, then\n"
        "  ``/worker_generate`` (or ``/worker_generate_stream``), each on a new connection.\n"
        "* ``python -m fastchat_api`` with its default configuration (INFO logging with the access\n"
        "  log), one process, connections pooled. The upstream calls it makes per request are\n"
        "  counted in the table (the stand-in counts its own routes; the controller's are read from\n"
        "  its access log).\n"
        "* For the memory test a fresh server process of each kind; for the last rows\n"
        f"  ``gunicorn -c config/gunicorn.conf.py`` with ``WEB_CONCURRENCY={args['gunicorn_workers']}``.\n"
        "* ``bench/floor_proxy.py``: an aiohttp app whose chat route only forwards to the stand-in's\n"
        "  ``/worker_generate`` over a pooled connection (no validation, template, logging or ids):\n"
        "  what aiohttp itself costs on this machine, the floor any aiohttp gateway stands on.\n")]


def _method_section(args: dict[str, Any]) -> list[str]:
    held = (SLOW_CHUNKS + 1) * SLOW_DELAY
    return ["How it is measured", "------------------", "", (
        "* Load: ``wrk -t1 -c C -d D --timeout 10s -s bench/wrk.lua`` (wrk reads each\n"
        "  chunked SSE body to its end before counting it). The Lua script POSTs\n"
        "  ``{\"model\", \"messages\": [one user message], \"max_tokens\": 64, \"temperature\": 0.7}``\n"
        "  with a counter in the message, so no two prompts are the same, and checks every answer:\n"
        "  HTTP 200 and ``chat.completion`` in the body, or for streams ``data: [DONE]`` and no\n"
        "  ``\"error``. Requests/s counts only answers that pass; failures are printed.\n"
        "* Latency: wrk's percentiles, from sending the request to the last byte of the answer.\n"
        f"* Turns: for each point both servers are warmed up, then take {args['rounds']} alternating runs each\n"
        "  (ours, FastChat, ours, FastChat...), so that outside load hits both alike. Requests/s is\n"
        "  over all runs; latency percentiles are the median of the runs'.\n"
        f"* Time to first token: wrk holds {args['ttft_concurrency'] - args['ttft_probes']} streams while an aiohttp client runs\n"
        f"  {args['ttft_probes']} more back to back ({args['ttft_concurrency']} in all) for {args['ttft_duration']:g} s and times each\n"
        "  from sending the request to the first event with content.\n"
        "* Added latency over the worker: p50 of the chat request at c=1 through the server minus p50\n"
        "  of the same generation posted straight to the stand-in's ``/worker_generate`` at c=1 (the\n"
        "  mean of two runs, one before and one right after the servers' c=1 points).\n"
        "* CPU: per point, the CPU time of each process group (the server, the controller, the\n"
        "  stand-in; wrk from the benchmark's own children) divided by the requests answered. CPU used\n"
        "  meanwhile by processes outside the benchmark is reported too: on a shared machine it lowers\n"
        "  and scatters the absolute numbers.\n"
        f"* Memory: a fresh server process serves one stream, then {args['streams']} streams of\n"
        f"  ``{SLOW_MODEL}`` opened within {args['ramp']:g} s and held ~{held:g} s each. Peak RSS is\n"
        "  ``VmHWM`` from ``/proc/<pid>/status`` at the end; a stream counts as complete with all\n"
        f"  {SLOW_CHUNKS} content events and ``[DONE]``.\n"
        "* Everything runs on 127.0.0.1 on the same machine: wrk, the controller, the stand-in and\n"
        "  the server share the cores, so absolute numbers are lower than on a dedicated server; the\n"
        "  ratios are what this page is for.\n")]


def _reproduce_section(meta: dict[str, Any]) -> list[str]:
    return ["Reproduce", "---------", "", (
        "On a Debian/Ubuntu machine with Python 3.11 and wrk (``sudo apt-get install -y wrk``)::\n\n"
        "    python -m venv .venv && . .venv/bin/activate\n"
        "    pip install torch==2.13.0   # its CPU build, first, for the [fastchat] extra\n"
        "    pip install -e '.[test,fastchat,bench]'\n"
        "    python -m devstack.fastchat_venv   # FastChat's own server, pydantic 1, no torch\n"
        "    python -m bench\n\n"
        "The benchmark installs nothing: when something is missing it says what, with the command\n"
        "that installs it, and stops before it starts anything.\n"
        "Options: ``--quick`` (3 s per point), ``--duration S``, ``--concurrency 1,8,32,128,256``,\n"
        "``--no-rss``, ``--no-gunicorn``, ``--profile`` (py-spy of our server at c=32, non-stream and\n"
        "stream, shown above when present; needs ``pip install py-spy``), ``--ref REF`` (measure\n"
        "``fastchat_api/`` as committed at a git ref instead of the working tree), ``--ab REF``\n"
        "(that ref against the working tree and the floor, in turns, into ``benchmarks-ab.rst``),\n"
        "``--no-docs`` (print only). Raw results: ``.bench/results-*.json``; server logs:\n"
        "``.bench/run/logs/``. Nothing under ``.bench/`` is meant to be committed.\n"),
        f"This run: ``{meta['command']}`` at commit ``{meta['commit']}``.\n"]
