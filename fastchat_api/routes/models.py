"""``GET /v1/models`` and ``GET /v1/models/{model}``: what the controller's workers serve."""

from __future__ import annotations

import time

from aiohttp import web

from ..jsonutil import json_response
from ..keys import model_access
from ..response_schemas import ModelListSchema, ModelSchema, returns
from ..responses import model_card
from ..typedefs import upstream_key

routes = web.RouteTableDef()


@routes.get("/v1/models")
@returns(ModelListSchema)
async def list_models(request: web.Request) -> web.Response:
    """List the models the controller's workers serve (those the key may use)."""
    names = await request.app[upstream_key].catalog.models(poll_workers=True)
    allows = model_access(request)
    if allows is not None:
        names = [name for name in names if allows(name)]
    created = int(time.time())
    return json_response({"object": "list", "data": [model_card(name, created) for name in names]})


@routes.get("/v1/models/{model:.+}")
@returns(ModelSchema)
async def retrieve_model(request: web.Request) -> web.Response:
    """Retrieve one model; 404 when no worker serves it (or the key may not use it)."""
    name = request.match_info["model"]
    await request.app[upstream_key].catalog.check_model(name, model_access(request))
    return json_response(model_card(name, int(time.time())))
