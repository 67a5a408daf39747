"""The completions pipeline: each prompt verbatim, ``n`` choices per prompt (choice
``prompt * n + k``), answered as a ``text_completion`` or one stream of them."""

from __future__ import annotations

from aiohttp import web

from .. import metrics, responses
from ..aio import gather_or_cancel
from ..jsonutil import json_response
from ..limits import admitted, estimate_tokens
from ..protocol import CompletionRequest
from ..record import Usage, record_of
from ..streaming import Delta, event
from ..typedefs import upstream_key
from ..upstream import Frame, Upstream
from .plan import Job, plan_completion
from .retry import with_retry
from .stream import stream_choices


async def text_completion(request: web.Request, req: CompletionRequest) -> web.StreamResponse:
    """Answer ``req`` within its key's limits, retried once on another worker when the first
    fails early."""
    upstream = request.app[upstream_key]
    record = record_of(request)
    record.model, record.user = req.model, req.user

    async def attempt() -> web.StreamResponse:
        jobs = await plan_completion(upstream, req)
        if req.stream:
            return await _stream(request, upstream, req, jobs)
        return await _complete(request, upstream, req, jobs)

    def estimate() -> int:
        return estimate_tokens(req.prompt, (req.max_tokens or 0) * req.n * len(req.prompt))

    async with admitted(request, req.model, estimate):
        return await with_retry(request, attempt)


def _usage(jobs: list[Job], n: int, results: list[Frame]) -> Usage:
    """Each prompt's tokens counted once, completion tokens summed over every choice."""
    return responses.total_usage(
        responses.usage(job.prompt_tokens, results[number * n : (number + 1) * n])
        for number, job in enumerate(jobs)
    )


async def _complete(
    request: web.Request, upstream: Upstream, req: CompletionRequest, jobs: list[Job]
) -> web.Response:
    """Every prompt's ``n`` choices generated concurrently."""
    results = await gather_or_cancel(
        upstream.client.generate(job.worker, job.params) for job in jobs for _ in range(req.n)
    )
    totals = metrics.record_usage(record_of(request), _usage(jobs, req.n, results))
    return json_response(responses.text_completion(req.model, results, totals))


async def _stream(
    request: web.Request, upstream: Upstream, req: CompletionRequest, jobs: list[Job]
) -> web.StreamResponse:
    """All prompts' choices streamed concurrently, interleaved, each with its own index; a
    chunk's logprobs are those of the tokens its text completes (``streaming.Cursor``)."""
    head = responses.chunk_head("cmpl-", "text_completion", req.model,
                                include_usage=req.include_usage, fingerprint=False)
    streams = [upstream.client.generate_stream(job.worker, job.params) for job in jobs for _ in range(req.n)]

    def chunk(index: int, delta: Delta, frame: Frame, final: bool) -> bytes:
        logprobs = responses.completion_logprobs(frame, delta)
        finish = responses.finish_reason(frame) if final else None
        return event(responses.text_completion_chunk(head, index, delta.text, logprobs, finish))

    return await stream_choices(
        request, streams, head, chunk, lambda lasts: _usage(jobs, req.n, lasts),
        include_usage=req.include_usage,
    )
