"""``POST /v1/chat/completions``."""

from __future__ import annotations

from aiohttp import web

from .. import schemas
from ..pipeline.chat import chat_completion
from ..protocol import ChatRequest
from ..response_schemas import ChatCompletionChunkSchema, ChatCompletionResponseSchema, returns

routes = web.RouteTableDef()


@routes.post("/v1/chat/completions")
@returns(ChatCompletionResponseSchema, events=ChatCompletionChunkSchema)
@schemas.accepts(schemas.CHAT_COMPLETION)
async def create_chat_completion(request: web.Request, req: ChatRequest) -> web.StreamResponse:
    """Create a chat completion.

    The messages are rendered into a prompt with the conversation template of the worker that
    serves the model; the answer comes whole, or with ``stream: true`` as server-sent events.
    """
    return await chat_completion(request, req)
