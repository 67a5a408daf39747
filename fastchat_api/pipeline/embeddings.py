"""The embeddings pipeline: inputs in batches of ``upstream.embedding_batch_size`` (FastChat's
``FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE``), all batches at once, each on the worker the
balancer picks for it, vectors back in input order."""

from __future__ import annotations

from aiohttp import web

from .. import metrics, responses
from ..aio import gather_or_cancel
from ..jsonutil import json_response
from ..limits import admitted, estimate_tokens
from ..protocol import EmbeddingsRequest
from ..record import record_of
from ..typedefs import config_key, upstream_key
from ..upstream import Frame, Upstream
from .plan import count_prompt, item_param


async def _batch(upstream: Upstream, model: str, inputs: list[str]) -> Frame:
    worker = await upstream.balancer.pick(model)
    return await upstream.client.embeddings(worker, model, inputs)


async def _check_blanks(upstream: Upstream, model: str, inputs: list[str]) -> None:
    """A 400 for a blank input the model's tokenizer reads as no token (see
    ``plan.count_prompt``); only blank inputs cost a count, once per distinct text."""
    blanks: dict[str, int] = {}  # each distinct blank text, and where it first appears
    for number, text in enumerate(inputs):
        if not text.strip():
            blanks.setdefault(text, number)
    if blanks:
        worker = await upstream.balancer.pick(model)
        await gather_or_cancel(
            count_prompt(upstream, worker, model, text, item_param("input", number, len(inputs)))
            for text, number in blanks.items()
        )


async def create_embeddings(request: web.Request, req: EmbeddingsRequest, model: str) -> web.Response:
    """Embed ``req.input`` with ``model`` within the key's limits: floats, or base64 of
    little-endian float32."""
    record = record_of(request)
    record.model, record.user = model, req.user
    async with admitted(request, model, lambda: estimate_tokens(req.input, 0)):
        return await _embed(request, req, model)


async def _embed(request: web.Request, req: EmbeddingsRequest, model: str) -> web.Response:
    upstream = request.app[upstream_key]
    await upstream.catalog.check_model(model)
    inputs, size = req.input, request.app[config_key].upstream.embedding_batch_size
    await _check_blanks(upstream, model, inputs)
    answers = await gather_or_cancel(
        _batch(upstream, model, inputs[start : start + size]) for start in range(0, len(inputs), size)
    )
    vectors = (vector for answer in answers for vector in answer["embedding"])
    tokens = sum(int(answer.get("token_num") or 0) for answer in answers)
    body = responses.embeddings(model, vectors, tokens, as_base64=req.encoding_format == "base64")
    metrics.record_usage(record_of(request), body["usage"])
    return json_response(body)
