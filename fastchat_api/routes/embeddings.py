"""``POST /v1/embeddings`` and ``POST /v1/engines/{model_name}/embeddings``."""

from __future__ import annotations

from aiohttp import web

from .. import schemas
from ..pipeline.embeddings import create_embeddings
from ..protocol import EmbeddingsRequest
from ..response_schemas import EmbeddingListSchema, returns

routes = web.RouteTableDef()


@routes.post("/v1/embeddings")
@routes.post("/v1/engines/{model_name}/embeddings")
@returns(EmbeddingListSchema)
@schemas.accepts(schemas.EMBEDDINGS)
async def embed(request: web.Request, req: EmbeddingsRequest) -> web.Response:
    """Create embeddings.

    One vector per input, in input order, as floats or (``encoding_format: base64``) base64 of
    little-endian float32.
    """
    # As FastChat: the body's model first, else the path's (or, on /v1/embeddings, the query's).
    model = req.model or request.match_info.get("model_name") or request.query.get("model_name")
    return await create_embeddings(request, req, str(model))
