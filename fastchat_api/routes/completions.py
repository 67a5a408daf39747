"""``POST /v1/completions``: prompts used verbatim (the template's stops still apply), ``n``
choices per prompt, whole or as one stream of chunks."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import generation, metrics, schemas
from ..generation import Job
from ..ids import new_id
from ..jsonutil import json_response
from ..streaming import DONE, event, first_frames, open_stream, relay
from ..typedefs import model_key, upstream_key
from ..upstream import Upstream

routes = web.RouteTableDef()

_LOGPROB_KEYS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


@routes.post("/v1/completions")
async def create_completion(request: web.Request) -> web.StreamResponse:
    req = schemas.load(schemas.COMPLETION, await schemas.read_json(request))
    request[model_key] = req["model"]
    upstream = request.app[upstream_key]

    async def run(jobs: list[Job]) -> web.StreamResponse:
        if req["stream"]:
            return await _stream(request, upstream, req, jobs)
        return await _complete(request, upstream, req, jobs)

    return await generation.run_with_retry(
        request, lambda: generation.plan_completion(upstream, req), run
    )


def logprobs(result: dict[str, Any], start: int = 0) -> dict[str, list] | None:
    """The worker's logprobs in OpenAI's shape, from token ``start`` on; null when it sent none."""
    given = result.get("logprobs")
    if not isinstance(given, dict):
        return None
    return {key: list(given.get(key) or ())[start:] for key in _LOGPROB_KEYS}


def _usage(jobs: list[Job], n: int, results: list[dict[str, Any]]) -> dict[str, int]:
    """Each prompt's tokens counted once, completion tokens summed over every choice."""
    return generation.total_usage(
        generation.usage(job.prompt_tokens, results[number * n : (number + 1) * n])
        for number, job in enumerate(jobs)
    )


async def _complete(
    request: web.Request, upstream: Upstream, req: dict[str, Any], jobs: list[Job]
) -> web.Response:
    """Every prompt's ``n`` choices generated concurrently; choice ``prompt * n + k``."""
    n = req["n"]
    results = await generation.gather_or_cancel(
        upstream.generate(job.worker, job.params) for job in jobs for _ in range(n)
    )
    choices = [
        {
            "index": index,
            "text": result.get("text", ""),
            "logprobs": logprobs(result),
            "finish_reason": generation.finish_reason(result),
        }
        for index, result in enumerate(results)
    ]
    return json_response({
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": req["model"],
        "choices": choices,
        "usage": metrics.record_usage(request, _usage(jobs, n, results)),
    })


async def _stream(request: web.Request, upstream: Upstream, req: dict[str, Any], jobs: list[Job]) -> web.StreamResponse:
    """All prompts' choices streamed concurrently, interleaved, each with its own index; a
    chunk's logprobs are those of the tokens that arrived since the choice's previous chunk."""
    n = req["n"]
    streams = await first_frames(
        [upstream.generate_stream(job.worker, job.params) for job in jobs for _ in range(n)]
    )
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    head = {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": req["model"],
    }
    if include_usage:
        head["usage"] = None
    tokens_sent = [0] * len(streams)

    def chunk(index: int, text: str, frame: dict[str, Any], final: bool) -> bytes:
        new = logprobs(frame, tokens_sent[index])
        if new is not None:
            tokens_sent[index] += len(new["tokens"])
        finish = generation.finish_reason(frame) if final else None
        return event(head | {"choices": [{"index": index, "text": text, "logprobs": new,
                                          "finish_reason": finish}]})

    response = await open_stream(request)
    lasts = await relay(response, streams, chunk)
    totals = metrics.record_usage(request, _usage(jobs, n, lasts))
    if include_usage:
        await response.write(event(head | {"choices": [], "usage": totals}))
    await response.write(DONE)
    return response
