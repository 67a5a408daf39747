"""``POST /v1/completions``."""

from __future__ import annotations

from aiohttp import web

from .. import schemas
from ..pipeline.completion import text_completion
from ..protocol import CompletionRequest
from ..response_schemas import TextCompletionChunkSchema, TextCompletionSchema, returns

routes = web.RouteTableDef()


@routes.post("/v1/completions")
@returns(TextCompletionSchema, events=TextCompletionChunkSchema)
@schemas.accepts(schemas.COMPLETION)
async def create_completion(request: web.Request, req: CompletionRequest) -> web.StreamResponse:
    """Create a text completion.

    Each prompt is sent verbatim (the template's stop strings still apply), with ``n`` choices
    per prompt; whole, or with ``stream: true`` as server-sent events.
    """
    return await text_completion(request, req)
