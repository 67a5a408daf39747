"""FastChat's own routes beside the OpenAI ones: ``POST /api/v1/token_check`` and
``POST /api/v1/chat/completions`` (chat with ``repetition_penalty``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import generation, schemas
from ..jsonutil import json_response
from ..typedefs import upstream_key
from ..upstream import Upstream
from . import chat

routes = web.RouteTableDef()


async def _check(upstream: Upstream, item: dict[str, Any]) -> dict[str, Any]:
    """Whether a prompt and ``max_tokens`` fit the context of the worker the controller picks."""
    model = item["model"]
    await upstream.check_model(model)
    worker = await upstream.worker_address(model)
    facts = await upstream.facts(worker, model)
    count = await upstream.count_tokens(worker, model, item["prompt"])
    return {
        "fits": count + item["max_tokens"] <= facts.context_length,
        "tokenCount": count,
        "contextLength": facts.context_length,
    }


@routes.post("/api/v1/token_check")
async def token_check(request: web.Request) -> web.Response:
    req = schemas.load(schemas.TOKEN_CHECK, await schemas.read_json(request))
    upstream = request.app[upstream_key]
    checked = await generation.gather_or_cancel(_check(upstream, item) for item in req["prompts"])
    return json_response({"prompts": checked})


@routes.post("/api/v1/chat/completions")
async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    req = schemas.load(schemas.API_CHAT_COMPLETION, await schemas.read_json(request))
    return await chat.answer(request, req)
