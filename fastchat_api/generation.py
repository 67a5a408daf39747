"""From a validated request to the parameters a worker generates with.

FastChat's range checks (with their exact texts), its stop-string merge and its context-length
rule live here, shared by every route that generates text.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

from aiohttp import web

from . import __version__, errors, metrics
from .conversation import Prompt
from .typedefs import stream_key
from .upstream import Upstream, WorkerFacts

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_LIMIT = 1024 * 1024
# OpenAI's backend-configuration marker: which gateway build produced the answer.
SYSTEM_FINGERPRINT = f"fastchat_api-{__version__}"
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def check_ranges(req: dict[str, Any]) -> None:
    """FastChat's ``check_requests``: the first value out of range is a 400 (code 40302)."""
    max_tokens, n = req.get("max_tokens"), req.get("n")
    temperature, top_p, top_k = req.get("temperature"), req.get("top_p"), req.get("top_k")
    if max_tokens is not None and max_tokens <= 0:
        raise errors.out_of_range(f"{max_tokens} is less than the minimum of 1 - 'max_tokens'", "max_tokens")
    if n is not None and n <= 0:
        raise errors.out_of_range(f"{n} is less than the minimum of 1 - 'n'", "n")
    if temperature is not None and temperature < 0:
        raise errors.out_of_range(f"{temperature} is less than the minimum of 0 - 'temperature'", "temperature")
    if temperature is not None and temperature > 2:
        raise errors.out_of_range(f"{temperature} is greater than the maximum of 2 - 'temperature'", "temperature")
    if top_p is not None and top_p < 0:
        raise errors.out_of_range(f"{top_p} is less than the minimum of 0 - 'top_p'", "top_p")
    if top_p is not None and top_p > 1:
        raise errors.out_of_range(f"{top_p} is greater than the maximum of 1 - 'top_p'", "top_p")
    if top_k is not None and -1 < top_k < 1:
        raise errors.out_of_range(f"{top_k} is out of Range. Either set top_k to -1 or >=1.", "top_k")


def merge_stop(*stops: str | Sequence[str] | None) -> list[str]:
    """The request's stop strings and the template's, once each, in that order.

    FastChat sends a set (random order per process); an ordered list is the same set. Empty
    strings are dropped: FastChat forwards them and the worker then stops at once.
    """
    merged: dict[str, None] = {}
    for stop in stops:
        for item in (stop,) if isinstance(stop, str) else stop or ():
            if item:
                merged[item] = None
    return list(merged)


# Special tokens a tokenizer may add around a prompt (BOS, a SentencePiece prefix, ChatGLM's
# [gMASK]/sop, ...); every tokenizer FastChat serves yields at most one token per UTF-8 byte.
TOKEN_MARGIN = 16


def provably_fits(text: str, requested: int | None, context_length: int) -> bool:
    """True when the prompt cannot crowd out ``requested`` new tokens, whatever the tokenizer,
    so the worker need not be asked to count it (the answer would be ``requested``)."""
    if not requested or requested <= 0:
        return False
    return len(text) * 4 + TOKEN_MARGIN + requested <= context_length or (
        len(text.encode()) + TOKEN_MARGIN + requested <= context_length
    )


async def prompt_room(
    upstream: Upstream, worker: str, model: str, text: str, requested: int | None,
    context_length: int, param: str,
) -> tuple[int | None, int]:
    """``(prompt tokens or None when not counted, max new tokens)`` by FastChat's length rule."""
    if upstream.skip_token_count and provably_fits(text, requested, context_length):
        return None, requested  # type: ignore[return-value]
    count = await upstream.count_tokens(worker, model, text)
    return count, context_room(requested, context_length, count, param)


def context_room(requested: int | None, context_length: int, prompt_tokens: int, param: str) -> int:
    """FastChat's ``check_length``: clamp to the room left, 400 (40303) when there is none."""
    wanted = requested if requested and requested > 0 else NO_LIMIT
    room = min(wanted, context_length - prompt_tokens)
    if room <= 0:
        raise errors.context_overflow(
            f"This model's maximum context length is {context_length} tokens. However, your "
            f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            param,
        )
    return room


@dataclass(slots=True)
class Job:
    """One request's generation: where it goes and what the worker is asked."""

    worker: str
    params: dict[str, Any]
    prompt_tokens: int | None  # None when the length rule needed no count


def gen_params(
    req: dict[str, Any],
    prompt: Prompt,
    max_new_tokens: int,
    stop: list[str],
    stop_token_ids: list[int] | None,
    **extra: Any,
) -> dict[str, Any]:
    """The worker's ``gen_params``, keys in FastChat's order (workers read them by name)."""
    params = {
        "model": req["model"],
        "prompt": prompt.text,
        "temperature": req["temperature"],
        "logprobs": extra.pop("logprobs", None),
        "top_p": req["top_p"],
        "top_k": req["top_k"],
        "presence_penalty": req["presence_penalty"],
        "frequency_penalty": req["frequency_penalty"],
        "max_new_tokens": max_new_tokens,
        "echo": extra.pop("echo", False),
        "stop_token_ids": stop_token_ids,
    }
    if prompt.images:
        params["images"] = prompt.images
    if req.get("repetition_penalty") is not None:  # FastChat's HF worker honours it
        params["repetition_penalty"] = req["repetition_penalty"]
    params.update(extra)
    params["stop"] = stop
    return params


async def _target(upstream: Upstream, req: dict[str, Any]) -> tuple[str, WorkerFacts]:
    """Model check, range checks, then the worker the controller picks and what it says."""
    model = req["model"]
    await upstream.check_model(model)
    check_ranges(req)
    worker = await upstream.worker_address(model)
    return worker, await upstream.facts(worker, model)


def _has_image(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return type(content) is list and any(part["type"] == "image_url" for part in content)


async def check_images(upstream: Upstream, req: dict[str, Any]) -> None:
    """A 400 for images sent to a model no worker registered as multimodal (it would ignore
    them and answer about an image it never saw)."""
    messages, model = req["messages"], req["model"]
    if isinstance(messages, str) or not any(_has_image(message) for message in messages):
        return
    if model not in await upstream.multimodal_models():
        raise errors.invalid_request(
            f"The model {model} does not accept images: its worker did not register with the "
            "controller as multimodal. Send text only, or use a vision model.",
            param="messages",
            code="images_not_supported",
        )


async def plan_chat(upstream: Upstream, req: dict[str, Any]) -> Job:
    """Model check, range checks, worker choice, prompt and length rule for a chat request."""
    model = req["model"]
    worker, facts = await _target(upstream, req)
    await check_images(upstream, req)
    prompt = facts.template.render(req["messages"])
    requested = req.get("max_completion_tokens") or req.get("max_tokens")
    prompt_tokens, max_new = await prompt_room(
        upstream, worker, model, prompt.text, requested, facts.context_length, "messages"
    )
    template = facts.template
    stop = merge_stop(req.get("stop"), template.stop_str)
    params = gen_params(req, prompt, max_new, stop, template.stop_token_ids)
    return Job(worker, params, prompt_tokens)


async def plan_completion(upstream: Upstream, req: dict[str, Any]) -> list[Job]:
    """One job per prompt: the prompt verbatim, the template's stops, and FastChat's length rule
    over every prompt, the smallest room shared by all."""
    model = req["model"]
    worker, facts = await _target(upstream, req)
    prompts = req["prompt"]
    rooms = await gather_or_cancel(
        prompt_room(upstream, worker, model, text, req["max_tokens"], facts.context_length, "prompt")
        for text in prompts
    )
    counts = [count for count, _ in rooms]
    max_new = min(room for _, room in rooms)
    template = facts.template
    stop = merge_stop(req.get("stop"), template.stop_str)
    extra: dict[str, Any] = {"logprobs": req.get("logprobs"), "echo": req["echo"]}
    if not req["stream"]:  # as FastChat: beam search only for whole answers
        if req.get("best_of") is not None:
            extra["best_of"] = req["best_of"]
        extra["use_beam_search"] = req["use_beam_search"]
    return [
        Job(worker, gen_params(req, Prompt(text, []), max_new, stop, template.stop_token_ids, **extra), count)
        for text, count in zip(prompts, counts)
    ]


P = TypeVar("P", Job, list[Job])


async def run_with_retry(
    request: web.Request, plan: Callable[[], Awaitable[P]], run: Callable[[P], Awaitable[T]]
) -> T:
    """Plan and run a generation; when a worker fails before anything reached the client
    (connection refused or reset, a 5xx), do both once more: the failed worker is forgotten,
    so the router asks the controller for another."""
    try:
        return await run(await plan())
    except errors.APIError as exc:
        stream = request.get(stream_key)
        if exc.failed_worker is None or (stream is not None and stream.prepared):
            raise
        log.warning("Retrying on another worker after %s failed: %s", exc.failed_worker, exc.message)
        metrics.retry(exc.failed_worker)
    return await run(await plan())


def finish_reason(result: dict[str, Any]) -> str:
    """OpenAI's finish reasons only; anything else a worker says (e.g. vLLM's abort) is a stop."""
    reason = result.get("finish_reason")
    return reason if reason in FINISH_REASONS else "stop"


def usage(prompt_tokens: int | None, results: Sequence[dict[str, Any]]) -> dict[str, int]:
    """OpenAI's usage: the prompt counted once, completion tokens summed over choices.

    The worker's own prompt count wins over ours: it is what the model actually read.
    """
    counts = [r.get("usage") or {} for r in results]
    prompt = int(next((c["prompt_tokens"] for c in counts if c.get("prompt_tokens")), prompt_tokens or 0))
    completion = sum(int(c.get("completion_tokens") or 0) for c in counts)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def total_usage(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Usages added up, e.g. one per prompt of a completions request."""
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for part in parts:
        for key in totals:
            totals[key] += part[key]
    return totals


async def gather_or_cancel(aws: Iterable[Awaitable[T]]) -> list[T]:
    """``gather`` that cancels the rest as soon as one fails, so no worker runs for nobody.

    One awaitable (the usual ``n = 1``) is awaited in place: no task, no gather.
    """
    aws = list(aws)
    if len(aws) == 1:
        return [await aws[0]]
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
