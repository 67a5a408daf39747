"""Benchmark fastchat_api against FastChat's own openai_api_server, side by side::

    python -m bench                       # the whole run, ~6 minutes; rewrites docs/benchmarks.rst
    python -m bench --quick --no-docs     # 3 s per point, nothing written under docs/
    python -m bench --limits              # what keys for teams cost: plain key, limits, Redis
    python -m bench --ab main --profile   # main against the working tree: CPU per request, by part

On 127.0.0.1 only, it starts (through :class:`devstack.stack.Stack`, so every child is stopped
at the end, even on Ctrl-C) FastChat's controller, the worker stand-in of the tests
(``python -m devstack.standin``) answering at once, FastChat's ``openai_api_server`` from a
virtualenv of its own (fschat 0.2.36 needs pydantic<2 and fastapi<0.111) and our server, then
drives the servers with wrk and a small aiohttp probe, prints a table and writes
``docs/benchmarks.rst`` with the plot ``docs/bench-throughput.png``.

It installs nothing: a missing tool (wrk, FastChat's virtualenv, matplotlib...) is named with
the command that installs it, and the run stops before it starts anything.

* :mod:`bench.tools`: what it needs besides the project.
* :mod:`bench.load`: the request bodies and wrk.
* :mod:`bench.probes`: aiohttp clients for what wrk cannot see (first token, slow streams).
* :mod:`bench.system`: CPU and memory accounting, the machine.
* :mod:`bench.source`: which code is measured (the checkout, or a git ref).
* :mod:`bench.profile`: py-spy profiles of our server.
* :mod:`bench.report`: the table, docs/benchmarks.rst and the plot.
* :mod:`bench.run`: the processes and the order of the measurements.
* :mod:`bench.floor_proxy`: what an aiohttp gateway costs at the least.
* :mod:`bench.limits`: what a request costs with a plain key, limits in process, limits in Redis.
* :mod:`bench.features`: rows for requests with ``response_format``, a limited key, ``tools``.
* :mod:`bench.ab`: a git ref against the working tree, in turns, with profiles by part.
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_started = time.monotonic()


def log(message: str) -> None:
    """``message`` on stdout, after the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)
