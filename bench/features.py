"""Rows for requests that ask more of our server than a plain chat, each beside the plain one.

One more server of ours (the default configuration plus keys for teams: ``limits.PLAIN``, a
key without attributes, and ``limits.LIMITED_KEY``, with limits too high to refuse anything)
answers each kind of request in turn, in alternating rounds, non-stream chat at 32 concurrent:
the server's CPU per request beside the plain request's is the cost of the feature. A feature
the server refuses (``tools`` until it calls tools) is reported as skipped with the answer it
got, so that a row is one line of :data:`FEATURES` whether or not the server does it yet.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from devstack.stack import gateway_command

from . import log
from .limits import LIMITED, LIMITED_KEY, PLAIN
from .load import JSON_MODEL, MODEL, chat_body, merge_runs

if TYPE_CHECKING:
    from .run import Bench

CONCURRENCY = 32
SERVER = "fastchat_api (keys)"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather now in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@dataclass(frozen=True)
class Feature:
    """One kind of request: a label, the fields added to the plain chat request, the key."""

    label: str
    fields: dict[str, Any] = field(default_factory=dict)
    key: str = PLAIN
    model: str = MODEL

    def body(self) -> str:
        return chat_body(self.model, **self.fields)


PLAIN_REQUEST = Feature("plain request")
FEATURES = (
    PLAIN_REQUEST,
    Feature("response_format json_object", {"response_format": {"type": "json_object"}}, model=JSON_MODEL),
    Feature("a key with limits (rpm, tpm, max_parallel), in process", key=LIMITED),
    Feature("tools (one function)", {"tools": [WEATHER_TOOL]}),
)


def _refusal(url: str, feature: Feature) -> str | None:
    """Why the server does not answer ``feature`` with a ``chat.completion``; None if it does."""
    request = urllib.request.Request(url, data=feature.body().encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {feature.key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = resp.read().decode()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            text = json.loads(text)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        return f"HTTP {exc.code}: {text[:300]}"
    except OSError as exc:
        return f"no answer: {exc}"
    return None if "chat.completion" in answer else f"unexpected answer: {answer[:300]}"


def measure(bench: Bench) -> dict[str, Any]:
    """Every feature in alternating rounds on one more server; by label, the merged result
    (with ``feature``: the request's extra fields and key) or ``{"skipped": why}``."""
    stack, args = bench.stack, bench.args
    config = stack.directory / "bench-features.yaml"
    config.write_text(yaml.safe_dump({"auth": {"api_keys": [PLAIN], "keys": [LIMITED_KEY]}}))
    proc = stack.start_gateway(
        argv=lambda port, controller: [*gateway_command(port, controller, python=sys.executable),
                                       "--config", str(config)],
        name="gateway-features", env=bench.env)
    bench.servers[SERVER] = proc  # its CPU is counted per point
    url = proc.url + "/v1/chat/completions"
    out: dict[str, Any] = {}
    try:
        ready = []
        for feature in FEATURES:
            why = _refusal(url, feature)
            if why:
                out[feature.label] = {"skipped": why}
                log(f"{SERVER}: {feature.label}: skipped, {why}")
            else:
                ready.append(feature)
                bench.warm_up(feature.label, url, feature.body(), CONCURRENCY, expect="chat.completion",
                              authorization=f"Bearer {feature.key}")
        runs: dict[str, list[dict[str, Any]]] = {f.label: [] for f in ready}
        duration = max(1, round(args.duration / max(1, args.rounds)))
        for _ in range(max(1, args.rounds)):
            for feature in ready:
                runs[feature.label].append(bench.measure(
                    f"{SERVER}: {feature.label}", url, feature.body(), CONCURRENCY, duration=duration,
                    warmup=False, quiet=True, expect="chat.completion",
                    authorization=f"Bearer {feature.key}"))
        for feature in ready:
            out[feature.label] = merged = merge_runs(runs[feature.label])
            merged["feature"] = {"fields": feature.fields, "key": feature.key, "model": feature.model}
            bench.show(f"{SERVER}: {feature.label}", merged)
    finally:
        del bench.servers[SERVER]
        proc.stop()
    return out
