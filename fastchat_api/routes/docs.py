"""``GET /openapi.json`` and ``GET /docs``: the API described, for tools and for people.

The page is self-contained: its script and style are inline and its policy forbids fetching
anything but this server's own document, so it works on hosts without internet access.
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

from ..response_schemas import returns
from ..typedefs import openapi_key

routes = web.RouteTableDef()

DOCS_PAGE = files("fastchat_api").joinpath("docs.html").read_bytes()
DOCS_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@routes.get("/openapi.json")
@returns(media_type="application/json")
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every route of this server."""
    return web.Response(body=request.app[openapi_key], content_type="application/json")


@routes.get("/docs")
@returns(media_type="text/html")
async def docs_page(request: web.Request) -> web.Response:
    """A human-readable page rendering the OpenAPI document."""
    return web.Response(body=DOCS_PAGE, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": DOCS_POLICY})
