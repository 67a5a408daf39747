"""FastChat's rules for turning a validated request into a worker's ``gen_params``.

Its range checks (with their exact texts), its stop-string merge, its context-length rule and
the shape of ``gen_params`` (``fastchat/serve/openai_api_server.py``), shared by every route that
generates text. Pure functions: no I/O, no aiohttp.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import errors
from .conversation import Prompt
from .protocol import ChatRequest, CompletionRequest, GenerationRequest

# FastChat's "no limit" for max_new_tokens when the client sets none (before the context clamp).
NO_LIMIT = 1024 * 1024

# Special tokens a tokenizer may add around a prompt (BOS, a SentencePiece prefix, ChatGLM's
# [gMASK]/sop, ...); every tokenizer FastChat serves yields at most one token per UTF-8 byte.
TOKEN_MARGIN = 16


# FastChat's ranges (``check_requests``), (minimum, maximum), in the order it checks them;
# ``max_completion_tokens``, which FastChat does not know, is held to ``max_tokens``' range.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "max_tokens": (1, None),
    "max_completion_tokens": (1, None),
    "n": (1, None),
    "temperature": (0, 2),
    "top_p": (0, 1),
}


def check_ranges(req: GenerationRequest) -> None:
    """FastChat's ``check_requests``: the first value out of :data:`RANGES` is a 400 (code
    40302) with FastChat's text; ``top_k`` must be -1 or at least 1."""
    for param, (minimum, maximum) in RANGES.items():
        value = getattr(req, param, None)
        if value is None:
            continue
        if minimum is not None and value < minimum:
            raise errors.out_of_range(f"{value} is less than the minimum of {minimum} - '{param}'", param)
        if maximum is not None and value > maximum:
            raise errors.out_of_range(f"{value} is greater than the maximum of {maximum} - '{param}'", param)
    if -1 < req.top_k < 1:
        raise errors.out_of_range(f"{req.top_k} is out of Range. Either set top_k to -1 or >=1.", "top_k")


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


def provably_fits(text: str, requested: int | None, context_length: int) -> bool:
    """True when the prompt cannot crowd out ``requested`` new tokens, whatever the tokenizer,
    so the worker need not be asked to count it (the answer would be ``requested``)."""
    if not requested or requested <= 0:
        return False
    return len(text) * 4 + TOKEN_MARGIN + requested <= context_length or (
        len(text.encode()) + TOKEN_MARGIN + requested <= context_length
    )


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


def _chat_logprobs(req: GenerationRequest) -> int | None:
    """What a chat request asks the worker for: ``top_logprobs`` when it wants logprobs (the
    HF worker turns them on for any number and gives the chosen token's), else None."""
    return req.top_logprobs if isinstance(req, ChatRequest) and req.logprobs else None


def gen_params(
    req: GenerationRequest,
    prompt: Prompt,
    max_new_tokens: int,
    stop: list[str],
    stop_token_ids: list[int] | None,
) -> dict[str, Any]:
    """The worker's ``gen_params``, keys in FastChat's order (workers read them by name)."""
    completion = req if isinstance(req, CompletionRequest) else None
    params: dict[str, Any] = {
        "model": req.model,
        "prompt": prompt.text,
        "temperature": req.temperature,
        "logprobs": completion.logprobs if completion else _chat_logprobs(req),
        "top_p": req.top_p,
        "top_k": req.top_k,
        "presence_penalty": req.presence_penalty,
        "frequency_penalty": req.frequency_penalty,
        "max_new_tokens": max_new_tokens,
        "echo": completion.echo if completion else False,
        "stop_token_ids": stop_token_ids,
    }
    if prompt.images:
        params["images"] = prompt.images
    if req.repetition_penalty is not None:
        params["repetition_penalty"] = req.repetition_penalty
    if completion and not req.stream:  # as FastChat: beam search only for whole answers
        if completion.best_of is not None:
            params["best_of"] = completion.best_of
        params["use_beam_search"] = completion.use_beam_search
    params["stop"] = stop
    return params
