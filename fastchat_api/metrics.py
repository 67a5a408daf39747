"""Prometheus metrics: what the gateway serves, how fast, how many tokens, what fails upstream.

Under gunicorn every worker process counts on its own. With ``PROMETHEUS_MULTIPROC_DIR`` set
before this module is imported (``config/gunicorn.conf.py`` sets it), prometheus_client keeps
the counts in files there and a scrape of any process adds up those of all of them; otherwise
the default registry (with the process and GC collectors) is scraped.

A request costs the middleware two clock reads, a gauge up and down, and two label children
found in a dict: children are made once per label set, never per request.

Pipelines feed it through the request's record (``record.py``), which the access log reads
too: ``record.model`` once the body is validated, :func:`record_usage` with the usage the
answer reports (streams too, even when the client did not ask for it), and :func:`first_token`
when a stream's first token arrives (``streaming.open_stream`` does).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Awaitable, Callable, Iterable, TypeVar

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from .record import RequestRecord, Usage, record_of

M = TypeVar("M", bound=MetricWrapperBase)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"
# The model label of a request naming a model the controller has never listed: clients may send
# any name, so only the controller's names become labels.
UNKNOWN_MODEL = "unknown"

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

REQUESTS = Counter("fastchat_api_requests", "HTTP requests answered, by route, model and status",
                   ["route", "model", "status"])
LATENCY = Histogram("fastchat_api_request_duration_seconds",
                    "Time from the request to the end of its response (a whole stream)",
                    ["route", "model"], buckets=_LATENCY_BUCKETS)
TIME_TO_FIRST_TOKEN = Histogram("fastchat_api_time_to_first_token_seconds",
                                "Time from the request to the first token of a stream",
                                ["model"], buckets=_TTFT_BUCKETS)
PROMPT_TOKENS = Counter("fastchat_api_prompt_tokens", "Prompt (input) tokens, by model", ["model"])
COMPLETION_TOKENS = Counter("fastchat_api_completion_tokens", "Generated (output) tokens, by model",
                            ["model"])
IN_FLIGHT = Gauge("fastchat_api_requests_in_flight", "Requests being answered",
                  multiprocess_mode="livesum")
STREAMS = Gauge("fastchat_api_streams_in_flight", "Streams being sent", multiprocess_mode="livesum")
UPSTREAM_ERRORS = Counter("fastchat_api_upstream_errors",
                          "Failed calls to the controller or a worker, by worker and kind "
                          "(timeout, connection, http_status, bad_response, worker_error)",
                          ["worker", "kind"])
IGNORED_PARAMS = Counter("fastchat_api_ignored_params", "Request fields accepted without effect, "
                         "by name (names no schema or known client sends count as other)",
                         ["param"])
RETRIES = Counter("fastchat_api_retries", "Requests sent again after an upstream failure, by the "
                  "worker that failed", ["worker"])
# By key: the key's name, or its hash prefix (``keys.key_id``); only with keys configured.
KEY_REQUESTS = Counter("fastchat_api_key_requests", "API requests answered, by key, model and status",
                       ["key", "model", "status"])
KEY_TOKENS = Counter("fastchat_api_key_tokens", "Tokens used, by key, model and type (prompt, "
                     "completion)", ["key", "model", "type"])
RATE_LIMITED = Counter("fastchat_api_rate_limited", "Requests refused by a limit, by key and limit "
                       "(rpm, tpm, max_parallel; model_max_parallel with an empty key)",
                       ["key", "limit"])
LIMITS_UNCHECKED = Counter("fastchat_api_limits_unchecked", "Requests whose limits could not be "
                           "checked (Redis failing), by outcome (served, refused)", ["outcome"])
GUIDED = Counter("fastchat_api_guided_attempts", "Generations of a shape the worker cannot "
                 "constrain (kind: json_object, json_schema, tools), by model, kind and outcome: valid, "
                 "retried (generated again), accepted (answered without conforming, as allowed), "
                 "failed (the request ended in an error)", ["model", "kind", "outcome"])


class _Children(dict[tuple[object, ...], M]):
    """Label children by label values, each made on first use (``labels()`` takes a lock)."""

    def __init__(self, metric: M) -> None:
        super().__init__()
        self.metric = metric

    def __missing__(self, values: tuple[object, ...]) -> M:
        child = self[values] = self.metric.labels(*values)
        return child


_requests = _Children(REQUESTS)
_latency = _Children(LATENCY)
_ttft = _Children(TIME_TO_FIRST_TOKEN)
_prompt_tokens = _Children(PROMPT_TOKENS)
_completion_tokens = _Children(COMPLETION_TOKENS)
_ignored = _Children(IGNORED_PARAMS)
_key_requests = _Children(KEY_REQUESTS)
_key_tokens = _Children(KEY_TOKENS)
_served: set[str] = set()  # every model name the controller listed since the process started


def note_served(names: list[str]) -> None:
    """The controller lists these models (``upstream.catalog`` reports every list it gets):
    requests naming them are labelled with the name."""
    _served.update(names)


def _model(record: RequestRecord) -> str:
    """The request's model as a label: a name the controller has listed, ``unknown`` for any
    other, empty when the request named none (yet)."""
    name = record.model
    if name is None:
        return ""
    return name if name in _served else UNKNOWN_MODEL


def _route(request: web.Request) -> str:
    """The route's pattern (``/v1/models/{model}``), never the raw path; "other" if none matched."""
    resource = request.match_info.route.resource
    return OTHER if resource is None else resource.canonical


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Outermost, so that errors already turned into responses are counted with their status."""
    record = record_of(request)
    IN_FLIGHT.inc()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects, which the error middleware lets through
        status = exc.status
        raise
    except asyncio.CancelledError:  # the client went away
        status = 499
        raise
    finally:
        IN_FLIGHT.dec()
        if record.first_token is not None:
            STREAMS.dec()
        route, model = _route(request), _model(record)
        _requests[route, model, status].inc()
        _latency[route, model].observe(time.perf_counter() - record.started)
        if record.key is not None:
            _key_requests[record.key.id, model, status].inc()


def first_token(record: RequestRecord) -> None:
    """A stream's first token reached the gateway: its latency, and one more stream in flight."""
    record.first_token = elapsed = time.perf_counter() - record.started
    _ttft[(_model(record),)].observe(elapsed)
    STREAMS.inc()


def record_usage(record: RequestRecord, usage: Usage) -> Usage:
    """An answer's token usage: counted by model, and kept on the record for the access log."""
    record.usage = usage
    model = _model(record)
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    _prompt_tokens[(model,)].inc(prompt)
    _completion_tokens[(model,)].inc(completion)
    if record.key is not None:
        _key_tokens[record.key.id, model, "prompt"].inc(prompt)
        _key_tokens[record.key.id, model, "completion"].inc(completion)
    return usage


def ignored_params(names: Iterable[str]) -> None:
    """A request's fields that were accepted and ignored, as bounded labels."""
    for name in names:
        _ignored[(name,)].inc()


def rate_limited(key: str | None, limit: str) -> None:
    """A request refused by ``limit`` of ``key`` (None: the model's cap)."""
    RATE_LIMITED.labels(key or "", limit).inc()


def limits_unchecked(outcome: str) -> None:
    """A request whose limits the storage could not check, ``served`` or ``refused``."""
    LIMITS_UNCHECKED.labels(outcome).inc()


def upstream_error(worker: str | None, kind: str) -> None:
    """A failed call to a worker (its address) or, with None, to the controller."""
    UPSTREAM_ERRORS.labels(worker or "controller", kind).inc()


def retry(worker: str) -> None:
    """A request is sent again because ``worker`` failed (see ``pipeline.retry``)."""
    RETRIES.labels(worker).inc()


def guided_attempt(model: str, kind: str, outcome: str) -> None:
    """One generation under a guide (``guided``): its outcome. ``model`` is the request's
    model, served (the pipeline checked it) and so a bounded label."""
    GUIDED.labels(model, kind, outcome).inc()


def exposition() -> bytes:
    """The text a scrape gets: every process's counts under gunicorn, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
