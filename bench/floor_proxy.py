"""The floor for any aiohttp gateway: a chat route that only forwards to the worker.

It reads the body, renders nothing, validates nothing, logs nothing, and makes the one
pooled ``/worker_generate`` call every chat request needs; with ``"stream": true`` the one
``/worker_generate_stream`` call, each NUL-terminated worker frame relayed as it is, as one
server-sent event (no delta, no re-encoding), then ``data: [DONE]``. ``python -m bench``
measures it beside the real servers, so that "added latency over the worker" and throughput
can be read against what aiohttp itself costs on the same machine::

    python bench/floor_proxy.py --port 8001 --worker http://127.0.0.1:21002
"""

from __future__ import annotations

import argparse
import json
import sys

import aiohttp
from aiohttp import web

_HEADERS = {"Content-Type": "application/json"}
_SESSION = web.AppKey("session", aiohttp.ClientSession)
_SSE_HEADERS = {"Content-Type": "text/event-stream"}


def make_app(worker: str) -> web.Application:
    async def session_ctx(app: web.Application):
        app[_SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        yield
        await app[_SESSION].close()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        params = {"model": body["model"], "prompt": body["messages"][-1]["content"],
                  "max_new_tokens": body.get("max_tokens") or 256, "echo": False, "stop": []}
        if body.get("stream"):
            return await relay(request, params)
        async with request.app[_SESSION].post(worker + "/worker_generate",
                                               data=json.dumps(params), headers=_HEADERS) as resp:
            result = json.loads(await resp.read())
        return web.json_response({
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result["text"]},
                         "finish_reason": result.get("finish_reason") or "stop"}],
            "usage": result.get("usage"),
        })

    async def relay(request: web.Request, params: dict) -> web.StreamResponse:
        async with request.app[_SESSION].post(worker + "/worker_generate_stream",
                                               data=json.dumps(params), headers=_HEADERS) as resp:
            out = web.StreamResponse(headers=_SSE_HEADERS)
            await out.prepare(request)
            while frame := await resp.content.readuntil(b"\0"):
                await out.write(b"data: " + frame[:-1] + b"\n\n")
        await out.write(b"data: [DONE]\n\n")
        return out

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", ready)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--worker", required=True, help="the worker's base URL")
    args = parser.parse_args(argv)
    web.run_app(make_app(args.worker.rstrip("/")), host=args.host, port=args.port,
                access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
