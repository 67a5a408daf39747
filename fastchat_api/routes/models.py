"""``GET /v1/models`` and ``GET /v1/models/{model}``: what the controller's workers serve."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..ids import new_id
from ..jsonutil import json_response
from ..typedefs import upstream_key

routes = web.RouteTableDef()


def model_card(name: str, created: int) -> dict[str, Any]:
    """OpenAI's model object with FastChat's extra fields (root, parent, permission)."""
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "fastchat",
        "root": name,
        "parent": None,
        "permission": [
            {
                "id": new_id("modelperm-"),
                "object": "model_permission",
                "created": created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": True,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    names = await request.app[upstream_key].models(poll_workers=True)
    created = int(time.time())
    return json_response({"object": "list", "data": [model_card(name, created) for name in names]})


@routes.get("/v1/models/{model:.+}")
async def retrieve_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    upstream = request.app[upstream_key]
    await upstream.check_model(name)
    return json_response(model_card(name, int(time.time())))
