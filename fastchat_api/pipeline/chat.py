"""The chat pipeline: a validated chat request, planned, generated on a worker, answered as a
``chat.completion`` or a stream of ``chat.completion.chunk``; shared by every chat route."""

from __future__ import annotations

from typing import Any, Iterator

from aiohttp import web

from .. import metrics, responses
from ..aio import gather_or_cancel
from ..jsonutil import json_response
from ..limits import admitted, estimate_tokens
from ..protocol import ChatRequest, Messages
from ..record import record_of
from ..streaming import Delta, event
from ..typedefs import upstream_key
from ..upstream import Frame, Upstream
from .plan import Job, plan_chat
from .retry import with_retry
from .stream import stream_choices


def _texts(messages: Messages) -> Iterator[str]:
    """The text of every message (a ready prompt string is one)."""
    if isinstance(messages, str):
        yield messages
        return
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif content:
            yield from (part["text"] for part in content if part["type"] == "text")


def _estimate(req: ChatRequest) -> int:
    """The tokens the chat is charged before it runs (``limits.estimate_tokens``)."""
    return estimate_tokens(_texts(req.messages), (req.requested_tokens or 0) * req.n)


async def chat_completion(request: web.Request, req: ChatRequest) -> web.StreamResponse:
    """Answer ``req`` within its key's limits, retried once on another worker when the first
    fails early."""
    upstream = request.app[upstream_key]
    record = record_of(request)
    record.model, record.user = req.model, req.user

    async def attempt() -> web.StreamResponse:
        job = await plan_chat(upstream, req)
        if req.stream:
            return await _stream(request, upstream, req, job)
        return await _complete(request, upstream, req, job)

    async with admitted(request, req.model, lambda: _estimate(req)):
        return await with_retry(request, attempt)


async def _complete(request: web.Request, upstream: Upstream, req: ChatRequest, job: Job) -> web.Response:
    """All ``n`` choices generated concurrently, answered as one ``chat.completion``."""
    results = await gather_or_cancel(upstream.client.generate(job.worker, job.params) for _ in range(req.n))
    totals = metrics.record_usage(record_of(request), responses.usage(job.prompt_tokens, results))
    return json_response(responses.chat_completion(req.model, results, totals))


async def _stream(request: web.Request, upstream: Upstream, req: ChatRequest, job: Job) -> web.StreamResponse:
    """Choices streamed concurrently; each choice's role first and its finish when it ends."""
    head = responses.chunk_head("chatcmpl-", "chat.completion.chunk", req.model,
                                include_usage=req.include_usage, fingerprint=True)

    def chunk(index: int, delta: Delta, frame: Frame, final: bool) -> bytes:
        content: dict[str, Any] = {"content": delta.text} if delta.text or not final else {}
        finish = responses.finish_reason(frame) if final else None
        return event(responses.chat_chunk(head, index, content, finish))

    roles = b"".join(
        event(responses.chat_chunk(head, index, {"role": "assistant", "content": ""}))
        for index in range(req.n)
    )
    streams = [upstream.client.generate_stream(job.worker, job.params) for _ in range(req.n)]
    return await stream_choices(
        request, streams, head, chunk, lambda lasts: responses.usage(job.prompt_tokens, lasts),
        include_usage=req.include_usage, prelude=roles,
    )
