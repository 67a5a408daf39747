"""The chat pipeline's answers when tools are offered (``tools``): whole, or streamed with the
calls as OpenAI's tool-call deltas. (A chat with tool history and no tools offered is rendered
through its format and answered as any chat.)"""

from __future__ import annotations

from typing import Any, Awaitable

from aiohttp import web

from .. import guided, metrics, responses
from ..aio import gather_or_cancel
from ..jsonutil import json_response
from ..protocol import ChatRequest
from ..record import record_of
from ..streaming import Delta, Frames, event
from ..tools import ToolGuide, stream
from ..typedefs import config_key
from ..upstream import Frame, Upstream
from .plan import Job
from .stream import stream_choices


async def complete(request: web.Request, upstream: Upstream, req: ChatRequest, job: Job,
                   guide: ToolGuide) -> web.Response:
    """A ``chat.completion`` whose choices may hold calls (``message.tool_calls``, or the
    legacy ``message.function_call``)."""
    attempts = request.app[config_key].tools.max_attempts

    def generate() -> Frames:
        """A forced call is streamed, so that the worker is hung up on once it is complete;
        under ``auto`` nothing ends early, and one whole answer costs the gateway half the CPU
        of relaying it frame by frame (``docs/benchmarks.rst``, the tools row)."""
        if guide.forced:
            return upstream.client.generate_stream(job.worker, job.params)
        return _whole(upstream.client.generate(job.worker, job.params))

    results = await gather_or_cancel(guided.until_valid(generate, guide, attempts, req.model)
                                     for _ in range(req.n))
    totals = metrics.record_usage(record_of(request), responses.usage(job.prompt_tokens, results))
    answers = [guide.answer(result) for result in results]
    body = responses.chat_completion(req.model, answers, totals)
    for choice, answer in zip(body["choices"], answers):
        calls = answer.get("tool_calls")
        if calls:
            _with_calls(choice["message"], calls, guide.tools.legacy)
    return json_response(body)


async def _whole(answer: Awaitable[Frame]) -> Frames:
    """A whole answer as a stream of its one (last) frame."""
    yield await answer


def _with_calls(message: dict[str, Any], calls: list[dict[str, Any]], legacy: bool) -> None:
    """The calls on an answer's message; its content null when the model wrote none."""
    message["content"] = message["content"] or None
    if legacy:
        message["function_call"] = calls[0]["function"]
    else:
        message["tool_calls"] = calls


def _call_deltas(number: int, call: dict[str, Any], legacy: bool) -> list[dict[str, Any]]:
    """A call as two deltas: its name (and id) with empty arguments, then the arguments."""
    name, arguments = call["function"]["name"], call["function"]["arguments"]
    if legacy:
        return [{"function_call": {"name": name, "arguments": ""}},
                {"function_call": {"arguments": arguments}}]
    return [{"tool_calls": [{"index": number, "id": call["id"], "type": "function",
                             "function": {"name": name, "arguments": ""}}]},
            {"tool_calls": [{"index": number, "function": {"arguments": arguments}}]}]


async def stream_answer(request: web.Request, upstream: Upstream, req: ChatRequest, job: Job,
                        guide: ToolGuide) -> web.StreamResponse:
    """Choices streamed: content as it comes, then each call's deltas, then the finish."""
    head = responses.chunk_head("chatcmpl-", "chat.completion.chunk", req.model,
                                include_usage=req.include_usage, fingerprint=True)

    def chunk(index: int, delta: Delta, frame: Frame, final: bool) -> bytes:
        calls = frame.get("tool_calls") if final else None
        if not calls:
            content: dict[str, Any] = {"content": delta.text} if delta.text or not final else {}
            finish = responses.finish_reason(frame) if final else None
            return event(responses.chat_chunk(head, index, content, finish))
        out = [responses.chat_chunk(head, index, {"content": delta.text})] if delta.text else []
        for number, call in enumerate(calls):
            out += [responses.chat_chunk(head, index, part) for part in _call_deltas(number, call, guide.tools.legacy)]
        out.append(responses.chat_chunk(head, index, {}, responses.finish_reason(frame)))
        return b"".join(map(event, out))

    # A forced answer is all calls: its content is null from the start, as in a whole answer.
    first = {"role": "assistant", "content": None if guide.forced else ""}
    roles = b"".join(event(responses.chat_chunk(head, index, first)) for index in range(req.n))
    streams = [_one(upstream, job, guide, request, req.model) for _ in range(req.n)]
    return await stream_choices(
        request, streams, head, chunk, lambda lasts: responses.usage(job.prompt_tokens, lasts),
        include_usage=req.include_usage, prelude=roles,
    )


def _one(upstream: Upstream, job: Job, guide: ToolGuide, request: web.Request, model: str) -> Frames:
    """One choice's frames (``tools.stream``)."""
    def generate() -> Frames:
        return upstream.client.generate_stream(job.worker, job.params)

    if guide.forced:
        return stream.whole(generate, guide, request.app[config_key].tools.max_attempts, model)
    return stream.held(generate(), guide, model)
