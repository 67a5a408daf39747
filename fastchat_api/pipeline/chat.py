"""The chat pipeline: a validated chat request, planned, generated on a worker, answered as a
``chat.completion`` or a stream of ``chat.completion.chunk``; shared by every chat route.

A JSON ``response_format`` is honoured through a guide (``structured``, ``guided``): its
instruction and opening go into the prompt, each choice is generated as a stream that is
closed once the value is complete, checked, and (whole answers only) generated again until it
conforms, up to ``structured.max_attempts`` times. Tools (``tools``) are written into the
prompt in the model's tool format and the calls read back (``tool_chat``).
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any, Iterator

from aiohttp import web

from .. import guided, metrics, responses, structured, tools
from ..aio import gather_or_cancel
from ..jsonutil import json_response
from ..limits import admitted, estimate_tokens
from ..protocol import ChatRequest, Messages
from ..record import record_of
from ..streaming import Delta, Frames, event
from ..typedefs import config_key, upstream_key
from ..upstream import Frame, Upstream
from .plan import Job, plan_chat
from .retry import with_retry
from .stream import stream_choices
from .tool_chat import complete as complete_with_tools
from .tool_chat import stream_answer as stream_with_tools


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


def _tool_texts(req: ChatRequest) -> Iterator[str]:
    """What tools add to the prompt: the functions' definitions, the past calls' arguments."""
    if req.tools is None or isinstance(req.messages, str):  # tools need a list of messages
        return
    for function in req.tools.functions:
        yield function.description
        yield json.dumps(function.parameters)
    for message in req.messages:
        for call in message.get("tool_calls") or ():
            yield call["function"]["arguments"]
        if message.get("function_call"):
            yield message["function_call"]["arguments"]


def _estimate(req: ChatRequest) -> int:
    """The tokens the chat is charged before it runs (``limits.estimate_tokens``), tools
    included."""
    return estimate_tokens(chain(_texts(req.messages), _tool_texts(req)), (req.requested_tokens or 0) * req.n)


async def chat_completion(request: web.Request, req: ChatRequest) -> web.StreamResponse:
    """Answer ``req`` within its key's limits, retried once on another worker when the first
    fails early."""
    upstream = request.app[upstream_key]
    record = record_of(request)
    record.model, record.user = req.model, req.user
    guide = None
    if req.response_format is not None:
        guide = structured.guide(req.response_format, request.app[config_key].structured, req.model)

    planner = None
    if req.tools is not None:
        planner = tools.guide_for(req.tools, req.model, request.app[config_key])

    async def attempt() -> web.StreamResponse:
        job = await plan_chat(upstream, req, guide, planner)
        if job.tools is not None and job.tools.offered:
            answer = stream_with_tools if req.stream else complete_with_tools
            return await answer(request, upstream, req, job, job.tools)
        if req.stream:
            return await _stream(request, upstream, req, job, guide)
        return await _complete(request, upstream, req, job, guide)

    async with admitted(request, req.model, lambda: _estimate(req)):
        return await with_retry(request, attempt)


def _top_logprobs(req: ChatRequest) -> int | None:
    """The alternatives per token the answer carries; None when it carries no logprobs."""
    return req.top_logprobs if req.logprobs else None


async def _complete(
    request: web.Request, upstream: Upstream, req: ChatRequest, job: Job, guide: guided.Guide | None
) -> web.Response:
    """All ``n`` choices generated concurrently, answered as one ``chat.completion``."""
    if guide is None:
        results = await gather_or_cancel(upstream.client.generate(job.worker, job.params) for _ in range(req.n))
    else:
        attempts = request.app[config_key].structured.max_attempts
        results = await gather_or_cancel(
            guided.until_valid(lambda: upstream.client.generate_stream(job.worker, job.params),
                               guide, attempts, req.model)
            for _ in range(req.n)
        )
    totals = metrics.record_usage(record_of(request), responses.usage(job.prompt_tokens, results))
    top = _top_logprobs(req)
    body = responses.chat_completion(req.model, results, totals, opening=guide.opening if guide else "",
                                     top_logprobs=top)
    return json_response(body, headers=None if top is None else responses.logprobs_headers(results, top))


async def _stream(
    request: web.Request, upstream: Upstream, req: ChatRequest, job: Job, guide: guided.Guide | None
) -> web.StreamResponse:
    """Choices streamed concurrently; each choice's role first (with the guide's opening as
    its first content) and its finish when it ends; a guided choice is checked before its
    finish goes out (``guided.checked``)."""
    head = responses.chunk_head("chatcmpl-", "chat.completion.chunk", req.model,
                                include_usage=req.include_usage, fingerprint=True)
    top = _top_logprobs(req)

    def chunk(index: int, delta: Delta, frame: Frame, final: bool) -> bytes:
        content: dict[str, Any] = {"content": delta.text} if delta.text or not final else {}
        finish = responses.finish_reason(frame) if final else None
        logprobs = None if top is None else responses.chat_logprobs(frame, top, delta)
        return event(responses.chat_chunk(head, index, content, finish, logprobs))

    opening = guide.opening if guide else ""
    roles = b"".join(
        event(responses.chat_chunk(head, index, {"role": "assistant", "content": opening}))
        for index in range(req.n)
    )
    streams: list[Frames] = [upstream.client.generate_stream(job.worker, job.params) for _ in range(req.n)]
    if guide is not None:
        streams = [guided.checked(stream, guide, req.model) for stream in streams]
    return await stream_choices(
        request, streams, head, chunk, lambda lasts: responses.usage(job.prompt_tokens, lasts),
        include_usage=req.include_usage, prelude=roles,
        headers=None if top is None else lambda firsts: responses.logprobs_headers(firsts, top),
    )
