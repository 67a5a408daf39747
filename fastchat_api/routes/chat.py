"""``POST /v1/chat/completions``: messages in, a prompt rendered from the worker's template,
choices out, whole or as a stream of chunks."""

from __future__ import annotations

import time
from typing import Any

import shortuuid
from aiohttp import web

from .. import generation, schemas
from ..generation import Job
from ..jsonutil import json_response
from ..streaming import DONE, TextDelta, event, first_frames, interleave, open_stream
from ..typedefs import upstream_key
from ..upstream import Upstream

routes = web.RouteTableDef()


@routes.post("/v1/chat/completions")
async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    req = schemas.load(schemas.CHAT_COMPLETION, await schemas.read_json(request))
    upstream = request.app[upstream_key]
    job = await generation.plan_chat(upstream, req)
    if req["stream"]:
        return await _stream(request, upstream, req, job)
    return await _complete(upstream, req, job)


async def _complete(upstream: Upstream, req: dict[str, Any], job: Job) -> web.Response:
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
    return json_response({
        "id": f"chatcmpl-{shortuuid.random()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req["model"],
        "system_fingerprint": None,
        "choices": choices,
        "usage": generation.usage(job.prompt_tokens, results),
    })


async def _stream(request: web.Request, upstream: Upstream, req: dict[str, Any], job: Job) -> web.StreamResponse:
    """Choices streamed concurrently; each choice's role first and its finish when it ends."""
    n = req["n"]
    streams = await first_frames([upstream.generate_stream(job.worker, job.params) for _ in range(n)])
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    head = {
        "id": f"chatcmpl-{shortuuid.random()}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req["model"],
        "system_fingerprint": None,
    }
    if include_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return event(head | {"choices": [{"index": index, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]})

    response = await open_stream(request)
    await response.write(b"".join(chunk(i, {"role": "assistant", "content": ""}) for i in range(n)))
    deltas = [TextDelta() for _ in range(n)]
    lasts: list[dict[str, Any]] = [{} for _ in range(n)]
    finished = [False] * n
    async for index, frame in interleave(streams):
        lasts[index] = frame
        finished[index] = frame.get("finish_reason") is not None
        text = deltas[index](frame.get("text", ""), finished[index])
        if finished[index]:
            reason = generation.finish_reason(frame)
            await response.write(chunk(index, {"content": text} if text else {}, reason))
        elif text:
            await response.write(chunk(index, {"content": text}))
    for index in range(n):
        if not finished[index]:  # the worker ended without a finish reason (e.g. sglang)
            await response.write(chunk(index, {}, "stop"))
    if include_usage:
        totals = generation.usage(job.prompt_tokens, lasts)
        await response.write(event(head | {"choices": [], "usage": totals}))
    await response.write(DONE)
    return response
