"""The embeddings pipeline: inputs in batches of ``upstream.embedding_batch_size`` (FastChat's
``FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE``), all batches at once, each on the worker the
balancer picks for it, vectors back in input order."""

from __future__ import annotations

from aiohttp import web

from .. import metrics, responses
from ..aio import gather_or_cancel
from ..jsonutil import json_response
from ..protocol import EmbeddingsRequest
from ..record import record_of
from ..typedefs import config_key, upstream_key
from ..upstream import Frame, Upstream


async def _batch(upstream: Upstream, model: str, inputs: list[str]) -> Frame:
    worker = await upstream.balancer.pick(model)
    return await upstream.client.embeddings(worker, model, inputs)


async def create_embeddings(request: web.Request, req: EmbeddingsRequest, model: str) -> web.Response:
    """Embed ``req.input`` with ``model``: floats, or base64 of little-endian float32."""
    upstream = request.app[upstream_key]
    record = record_of(request)
    record.model, record.user = model, req.user
    await upstream.catalog.check_model(model)
    inputs, size = req.input, request.app[config_key].upstream.embedding_batch_size
    answers = await gather_or_cancel(
        _batch(upstream, model, inputs[start : start + size]) for start in range(0, len(inputs), size)
    )
    vectors = (vector for answer in answers for vector in answer["embedding"])
    tokens = sum(int(answer.get("token_num") or 0) for answer in answers)
    body = responses.embeddings(model, vectors, tokens, as_base64=req.encoding_format == "base64")
    metrics.record_usage(record, body["usage"])
    return json_response(body)
