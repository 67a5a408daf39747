"""``POST /v1/chat/completions``: messages in, a prompt rendered from the worker's template,
choices out, whole or as a stream of chunks."""

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


@routes.post("/v1/chat/completions")
async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    req = schemas.load(schemas.CHAT_COMPLETION, await schemas.read_json(request))
    return await answer(request, req)


async def answer(request: web.Request, req: dict[str, Any]) -> web.StreamResponse:
    """The chat pipeline for a validated request, on any chat route."""
    request[model_key] = req["model"]
    upstream = request.app[upstream_key]

    async def run(job: Job) -> web.StreamResponse:
        if req["stream"]:
            return await _stream(request, upstream, req, job)
        return await _complete(request, upstream, req, job)

    return await generation.run_with_retry(request, lambda: generation.plan_chat(upstream, req), run)


async def _complete(request: web.Request, upstream: Upstream, req: dict[str, Any], job: Job) -> web.Response:
    """All ``n`` choices generated concurrently, answered as one ``chat.completion``."""
    results = await generation.gather_or_cancel(
        upstream.generate(job.worker, job.params) for _ in range(req["n"])
    )
    choices = [
        {
            "index": index,
            "message": {"role": "assistant", "content": result.get("text", ""), "refusal": None},
            "logprobs": None,
            "finish_reason": generation.finish_reason(result),
        }
        for index, result in enumerate(results)
    ]
    usage = generation.usage(job.prompt_tokens, results)
    metrics.record_usage(request, usage)
    return json_response({
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req["model"],
        "system_fingerprint": generation.SYSTEM_FINGERPRINT,
        "choices": choices,
        "usage": usage,
    })


async def _stream(request: web.Request, upstream: Upstream, req: dict[str, Any], job: Job) -> web.StreamResponse:
    """Choices streamed concurrently; each choice's role first and its finish when it ends."""
    n = req["n"]
    streams = await first_frames([upstream.generate_stream(job.worker, job.params) for _ in range(n)])
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    head = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req["model"],
        "system_fingerprint": generation.SYSTEM_FINGERPRINT,
    }
    if include_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return event(head | {"choices": [{"index": index, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]})

    def content(index: int, text: str, frame: dict[str, Any], final: bool) -> bytes:
        if final:
            return chunk(index, {"content": text} if text else {}, generation.finish_reason(frame))
        return chunk(index, {"content": text})

    response = await open_stream(request)
    await response.write(b"".join(chunk(i, {"role": "assistant", "content": ""}) for i in range(n)))
    lasts = await relay(response, streams, content)
    totals = generation.usage(job.prompt_tokens, lasts)
    metrics.record_usage(request, totals)
    if include_usage:
        await response.write(event(head | {"choices": [], "usage": totals}))
    await response.write(DONE)
    return response
