"""From a validated request to the worker and ``gen_params`` it is generated with.

The model must be served, the values in FastChat's ranges, the prompt rendered from the
worker's template (chat) or taken verbatim (completions), and the prompt must leave room in the
model's context: FastChat's rules (``fastchat_rules``) over what the upstream knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .. import errors
from ..aio import gather_or_cancel
from ..conversation import Prompt, Template
from ..fastchat_rules import check_ranges, context_room, gen_params, merge_stop, provably_fits
from ..guided import Guide
from ..protocol import ChatMessage, ChatRequest, CompletionRequest, GenerationRequest
from ..tools import ToolGuide
from ..upstream import Upstream, WorkerFacts


@dataclass(slots=True)
class Job:
    """One prompt's generation: where it goes and what the worker is asked."""

    worker: str
    params: dict[str, Any]
    prompt_tokens: int | None  # None when the length rule needed no count
    tools: ToolGuide | None = None  # how the chat's tools were written into the prompt


async def prompt_room(
    upstream: Upstream, worker: str, model: str, text: str, requested: int | None,
    context_length: int, param: str, item: str | None = None,
) -> tuple[int | None, int]:
    """``(prompt tokens, or None when not counted; max new tokens)`` by FastChat's length rule.

    The worker is asked to count only when the prompt's length alone cannot prove it fits, and
    always for a blank prompt: one it reads as no token at all is a 400 (``count_prompt``) naming
    ``item`` (e.g. ``prompt[1]``), else ``param``.
    """
    if text.strip() and requested and upstream.skip_token_count and provably_fits(
        text, requested, context_length
    ):
        return None, requested
    count = await count_prompt(upstream, worker, model, text, item or param)
    return count, context_room(requested, context_length, count, param)


async def count_prompt(upstream: Upstream, worker: str, model: str, text: str, param: str) -> int:
    """The worker tokenizer's count of ``text``; a 400 naming ``param`` when it is 0.

    A tokenizer that adds a BOS token reads one in ``""`` and the worker answers (as through
    FastChat); one that adds none reads nothing, and FastChat's HF worker then fails with a torch
    error (an empty tensor), which FastChat's server passes on to the client.
    """
    count = await upstream.client.count_tokens(worker, model, text)
    if count == 0:
        raise errors.empty_prompt(param)
    return count


def item_param(name: str, number: int, count: int) -> str:
    """How an error names one of a list field's items: ``prompt[2]``, or ``prompt`` alone when
    there is one (a string is loaded as a list of one)."""
    return name if count == 1 else f"{name}[{number}]"


async def _target(upstream: Upstream, req: GenerationRequest) -> tuple[str, WorkerFacts]:
    """Model check, range checks, then the worker the balancer picks and what it says."""
    await upstream.catalog.check_model(req.model)
    check_ranges(req)
    worker = await upstream.balancer.pick(req.model)
    return worker, await upstream.catalog.facts(worker, req.model)


def _has_image(message: ChatMessage) -> bool:
    content = message.get("content")
    return type(content) is list and any(part["type"] == "image_url" for part in content)


async def check_images(upstream: Upstream, req: ChatRequest) -> None:
    """A 400 for images sent to a model no worker registered as multimodal (it would ignore
    them and answer about an image it never saw)."""
    if isinstance(req.messages, str) or not any(_has_image(message) for message in req.messages):
        return
    if req.model not in await upstream.catalog.multimodal_models():
        raise errors.invalid_request(
            f"The model {req.model} does not accept images: its worker did not register with the "
            "controller as multimodal. Send text only, or use a vision model.",
            param="messages",
            code="unsupported_value",
        )


async def plan_chat(
    upstream: Upstream, req: ChatRequest, guide: Guide | None = None,
    tools: Callable[[Template], ToolGuide | None] | None = None,
) -> Job:
    """The chat's prompt rendered from the worker's template (with the ``guide``'s
    instruction and opening, if any, or in the tool format ``tools`` picks for the template),
    its stops and the template's merged, and FastChat's length rule."""
    worker, facts = await _target(upstream, req)
    await check_images(upstream, req)
    template = facts.template
    tool_guide = None if tools is None else tools(template)
    if tool_guide is not None:
        prompt = tool_guide.render(template, req.messages, guide)
    elif guide is None:
        prompt = template.render(req.messages)
    else:
        prompt = template.render(req.messages, instruction=guide.instruction, prefill=guide.opening)
    prompt_tokens, max_new = await prompt_room(
        upstream, worker, req.model, prompt.text, req.requested_tokens, facts.context_length, "messages"
    )
    stop = merge_stop(req.stop, template.stop_str)
    return Job(worker, gen_params(req, prompt, max_new, stop, template.stop_token_ids), prompt_tokens, tool_guide)


async def plan_completion(upstream: Upstream, req: CompletionRequest) -> list[Job]:
    """One job per prompt: the prompt verbatim, the template's stops, and FastChat's length rule
    over every prompt, the smallest room shared by all."""
    worker, facts = await _target(upstream, req)
    rooms = await gather_or_cancel(
        prompt_room(upstream, worker, req.model, text, req.max_tokens, facts.context_length,
                    "prompt", item_param("prompt", number, len(req.prompt)))
        for number, text in enumerate(req.prompt)
    )
    max_new = min(room for _, room in rooms)
    template = facts.template
    stop = merge_stop(req.stop, template.stop_str)
    return [
        Job(worker, gen_params(req, Prompt(text, []), max_new, stop, template.stop_token_ids), count)
        for text, (count, _) in zip(req.prompt, rooms)
    ]
