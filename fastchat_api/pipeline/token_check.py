"""FastChat's ``/api/v1/token_check``: whether each prompt and its ``max_tokens`` fit the
context of the worker the balancer picks."""

from __future__ import annotations

from typing import Any, Callable

from ..aio import gather_or_cancel
from ..protocol import TokenCheckItem, TokenCheckRequest
from ..upstream import Upstream


async def _check(upstream: Upstream, item: TokenCheckItem,
                 allows: Callable[[str], bool] | None) -> dict[str, Any]:
    await upstream.catalog.check_model(item.model, allows)
    worker = await upstream.balancer.pick(item.model)
    facts = await upstream.catalog.facts(worker, item.model)
    count = await upstream.client.count_tokens(worker, item.model, item.prompt)
    return {
        "fits": count + item.max_tokens <= facts.context_length,
        "tokenCount": count,
        "contextLength": facts.context_length,
    }


async def token_check(upstream: Upstream, req: TokenCheckRequest,
                      allows: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """FastChat's answer: ``{"prompts": [{"fits", "tokenCount", "contextLength"}, ...]}``; a
    model the key may not use (``allows``) is a 404 as for a model that does not exist."""
    return {"prompts": await gather_or_cancel(_check(upstream, item, allows) for item in req.prompts)}
