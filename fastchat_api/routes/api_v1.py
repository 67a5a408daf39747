"""FastChat's own routes beside the OpenAI ones: ``POST /api/v1/token_check`` and
``POST /api/v1/chat/completions``."""

from __future__ import annotations

from aiohttp import web

from .. import schemas
from ..jsonutil import json_response
from ..pipeline.chat import chat_completion
from ..pipeline.token_check import token_check
from ..protocol import APIChatRequest, TokenCheckRequest
from ..response_schemas import (
    ChatCompletionChunkSchema, ChatCompletionResponseSchema, TokenCheckResponseSchema, returns,
)
from ..keys import model_access
from ..typedefs import upstream_key

routes = web.RouteTableDef()


@routes.post("/api/v1/token_check")
@returns(TokenCheckResponseSchema)
@schemas.accepts(schemas.TOKEN_CHECK)
async def check_tokens(request: web.Request, req: TokenCheckRequest) -> web.Response:
    """Check whether prompts fit their model's context.

    For each prompt, its token count, the model's context length, and whether the prompt plus
    ``max_tokens`` fits (FastChat's route).
    """
    return json_response(await token_check(request.app[upstream_key], req, model_access(request)))


@routes.post("/api/v1/chat/completions")
@returns(ChatCompletionResponseSchema, events=ChatCompletionChunkSchema)
@schemas.accepts(schemas.API_CHAT_COMPLETION)
async def create_chat_completion(request: web.Request, req: APIChatRequest) -> web.StreamResponse:
    """Create a chat completion (FastChat's route).

    As ``/v1/chat/completions``, with ``repetition_penalty`` sent to the worker (1.0 unless
    given).
    """
    return await chat_completion(request, req)
