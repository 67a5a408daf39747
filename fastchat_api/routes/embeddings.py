"""``POST /v1/embeddings`` and ``POST /v1/engines/{model_name}/embeddings``: inputs in batches,
all batches at once, vectors back in input order as floats or as base64 of float32."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

from aiohttp import web

from .. import generation, metrics, schemas
from ..jsonutil import json_response
from ..typedefs import config_key, model_key, upstream_key
from ..upstream import Upstream

routes = web.RouteTableDef()


def base64_float32(vector: list[float]) -> str:
    """What OpenAI clients decode with ``np.frombuffer(b64decode(s), dtype="float32")``:
    little-endian float32."""
    values = array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


async def _batch(upstream: Upstream, model: str, inputs: list[str]) -> dict[str, Any]:
    """One batch, on the worker the controller picks for it (batches may land on different ones)."""
    worker = await upstream.worker_address(model)
    return await upstream.embeddings(worker, model, inputs)


@routes.post("/v1/embeddings")
@routes.post("/v1/engines/{model_name}/embeddings")
async def create_embeddings(request: web.Request) -> web.Response:
    req = schemas.load(schemas.EMBEDDINGS, await schemas.read_json(request))
    # As FastChat: the body's model first, else the path's (or, on /v1/embeddings, the query's).
    model = req.get("model") or request.match_info.get("model_name") or request.query.get("model_name")
    upstream = request.app[upstream_key]
    request[model_key] = str(model)
    await upstream.check_model(str(model))
    inputs, size = req["input"], request.app[config_key].upstream.embedding_batch_size
    answers = await generation.gather_or_cancel(
        _batch(upstream, model, inputs[start : start + size]) for start in range(0, len(inputs), size)
    )
    as_base64 = req.get("encoding_format") == "base64"
    vectors = (vector for answer in answers for vector in answer["embedding"])
    tokens = sum(int(answer.get("token_num") or 0) for answer in answers)
    return json_response({
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": base64_float32(vector) if as_base64 else vector,
             "index": index}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": metrics.record_usage(request, {"prompt_tokens": tokens, "total_tokens": tokens}),
    })
