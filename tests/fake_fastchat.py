"""A FastChat controller and model worker in one small aiohttp app, for unit tests.

It speaks the real wire protocol (NUL-separated cumulative frames, ``{"conv": ...}``,
``{"address": ...}``) and records every request, so tests can see exactly what the gateway
sent. Failures a real worker can't be made to produce are scripted through attributes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

VICUNA = {
    "name": "vicuna_v1.1",
    "system_template": "{system_message}",
    "system_message": "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "roles": ["USER", "ASSISTANT"],
    "messages": [],
    "offset": 0,
    "sep_style": 2,
    "sep": " ",
    "sep2": "</s>",
    "stop_str": None,
    "stop_token_ids": None,
}


@dataclass
class FakeFastChat:
    """Scripted controller + worker. ``address`` is set once the server runs."""

    models: list[str] = field(default_factory=lambda: ["fake-model"])
    conv: dict[str, Any] = field(default_factory=lambda: dict(VICUNA))
    pieces: list[str] = field(default_factory=lambda: ["Hello", " there", ", friend", "!"])
    finish_reason: str | None = "stop"
    context_length: int = 2048
    prompt_tokens: int = 10
    error_frame: dict[str, Any] | None = None  # sent after ``error_after`` pieces
    error_after: int = 0
    stream_status: int = 200
    generate_status: int = 200
    delay: float = 0.0
    address: str = ""
    requests: list[tuple[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        for path, handler in {
            "/list_models": self._list_models,
            "/refresh_all_workers": self._refresh,
            "/get_worker_address": self._worker_address,
            "/worker_get_conv_template": self._conv,
            "/model_details": self._details,
            "/count_token": self._count,
            "/worker_generate": self._generate,
            "/worker_generate_stream": self._generate_stream,
        }.items():
            app.router.add_post(path, handler)
        return app

    def sent(self, path: str) -> list[Any]:
        """The JSON bodies the gateway sent to ``path``, oldest first."""
        return [body for p, body in self.requests if p == path]

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append((request.path, body))
        return body

    async def _list_models(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"models": self.models})

    async def _refresh(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(None)

    async def _worker_address(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        return web.json_response({"address": self.address if body["model"] in self.models else ""})

    async def _conv(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"conv": self.conv})

    async def _details(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"context_length": self.context_length})

    async def _count(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"count": self.prompt_tokens, "error_code": 0})

    def frames(self) -> list[dict[str, Any]]:
        """Cumulative frames as the HF worker sends them, then the final one."""
        frames, text = [], ""
        for number, piece in enumerate(self.pieces):
            if self.error_frame is not None and number == self.error_after:
                return frames + [self.error_frame]
            text += piece
            frames.append(self._frame(text, number + 1, None))
        if self.error_frame is not None:
            return frames + [self.error_frame]
        return frames + [self._frame(text, len(self.pieces), self.finish_reason)]

    def _frame(self, text: str, tokens: int, finish: str | None) -> dict[str, Any]:
        usage = {"prompt_tokens": self.prompt_tokens, "completion_tokens": tokens,
                 "total_tokens": self.prompt_tokens + tokens}
        return {"text": text, "error_code": 0, "usage": usage, "finish_reason": finish, "logprobs": None}

    async def _generate(self, request: web.Request) -> web.Response:
        await self._record(request)
        if self.generate_status != 200:
            return web.Response(status=self.generate_status, text="worker failed")
        await asyncio.sleep(self.delay)
        return web.json_response(self.frames()[-1])

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.stream_status != 200:
            return web.Response(status=self.stream_status, text="worker failed")
        response = web.StreamResponse()
        await response.prepare(request)
        for frame in self.frames():
            await asyncio.sleep(self.delay)
            await response.write(json.dumps(frame).encode() + b"\0")
        return response
