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

from fastchat_api.devstack import VICUNA_V1_1_CONV as VICUNA

@dataclass
class FakeFastChat:
    """Scripted controller + worker. ``address`` is set once the server runs."""

    models: list[str] = field(default_factory=lambda: ["fake-model"])
    multimodal: list[str] = field(default_factory=list)  # registered with multimodal: true
    conv: dict[str, Any] = field(default_factory=lambda: dict(VICUNA))
    pieces: list[str] = field(default_factory=lambda: ["Hello", " there", ", friend", "!"])
    replies: dict[str, list[str]] = field(default_factory=dict)  # pieces by prompt
    # Frames sent as they are instead of the pieces' (e.g. a character split across tokens).
    script: list[dict[str, Any]] | None = None
    finish_reason: str | None = "stop"
    context_length: int = 2048
    prompt_tokens: int = 10
    token_counts: dict[str, int] = field(default_factory=dict)  # /count_token by prompt
    error_frame: dict[str, Any] | None = None  # sent after ``error_after`` pieces
    error_after: int = 0
    stream_status: int = 200
    generate_status: int = 200
    embeddings_status: int = 200
    embeddings_error: dict[str, Any] | None = None
    embedding_calls_at_once: int = 0  # most /worker_get_embeddings calls seen in flight together
    _embedding_calls: int = 0
    delay: float = 0.0
    stall: float = 0.0  # a stream waits this long more before frame number ``stall_after``
    stall_after: int = 0
    address: str = ""
    dispatch: list[str] = field(default_factory=list)  # addresses handed out in turn (else its own)
    requests: list[tuple[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        for path, handler in {
            "/list_models": self._list_models,
            "/list_multimodal_models": self._list_multimodal_models,
            "/refresh_all_workers": self._refresh,
            "/get_worker_address": self._worker_address,
            "/worker_get_conv_template": self._conv,
            "/model_details": self._details,
            "/count_token": self._count,
            "/worker_generate": self._generate,
            "/worker_generate_stream": self._generate_stream,
            "/worker_get_embeddings": self._embeddings,
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

    async def _list_multimodal_models(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"models": self.multimodal})

    async def _refresh(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(None)

    async def _worker_address(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if body["model"] not in self.models:
            return web.json_response({"address": ""})
        if self.dispatch:
            self.dispatch.append(self.dispatch.pop(0))
            return web.json_response({"address": self.dispatch[-1]})
        return web.json_response({"address": self.address})

    async def _conv(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"conv": self.conv})

    async def _details(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"context_length": self.context_length})

    def count(self, prompt: str) -> int:
        return self.token_counts.get(prompt, self.prompt_tokens)

    async def _count(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        return web.json_response({"count": self.count(body["prompt"]), "error_code": 0})

    def frames(self, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Cumulative frames as the HF worker sends them, then the final one.

        With ``echo`` the text starts with the prompt; with ``logprobs`` each frame carries the
        cumulative logprobs of the pieces so far (one "token" per piece, logprob -0.5 * number;
        with ``echo`` the prompt is one more token first, logprob 0). ``script`` replaces them.
        """
        if self.script is not None:
            return list(self.script)
        params = params or {}
        prompt = params.get("prompt", "")
        pieces = self.replies.get(prompt, self.pieces)
        echo = bool(params.get("echo"))
        start = prompt if echo else ""
        with_logprobs = params.get("logprobs") is not None
        frames, text = [], start
        for number, piece in enumerate(pieces):
            if self.error_frame is not None and number == self.error_after:
                return frames + [self.error_frame]
            text += piece
            frames.append(self._frame(prompt, text, pieces[: number + 1], with_logprobs, None, echo))
        if self.error_frame is not None:
            return frames + [self.error_frame]
        return frames + [self._frame(prompt, text, pieces, with_logprobs, self.finish_reason, echo)]

    def _frame(self, prompt: str, text: str, pieces: list[str], with_logprobs: bool,
               finish: str | None, echo: bool) -> dict[str, Any]:
        prompt_tokens, count = self.count(prompt), len(pieces)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count,
                 "total_tokens": prompt_tokens + count}
        logprobs = None
        if with_logprobs:
            tokens = [prompt] * echo + pieces
            offsets = [sum(len(token) for token in tokens[:k]) for k in range(len(tokens))]
            logprobs = {"text_offset": offsets,
                        "token_logprobs": [0.0] * echo + [-0.5 * (k + 1) for k in range(count)],
                        "tokens": tokens, "top_logprobs": [{}] * len(tokens)}
        return {"text": text, "error_code": 0, "usage": usage, "finish_reason": finish, "logprobs": logprobs}

    async def _generate(self, request: web.Request) -> web.Response:
        params = await self._record(request)
        if self.generate_status != 200:
            return web.Response(status=self.generate_status, text="worker failed")
        await asyncio.sleep(self.delay)
        return web.json_response(self.frames(params)[-1])

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        params = await self._record(request)
        if self.stream_status != 200:
            return web.Response(status=self.stream_status, text="worker failed")
        response = web.StreamResponse()
        await response.prepare(request)
        for number, frame in enumerate(self.frames(params)):
            await asyncio.sleep(self.delay + (self.stall if number == self.stall_after else 0))
            await response.write(json.dumps(frame).encode() + b"\0")
        return response

    @staticmethod
    def embed(text: str) -> list[float]:
        """A vector exact in float32, so base64 and float answers can be compared exactly."""
        return [len(text) / 8, -0.25, 0.125 * text.count(" ")]

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.embeddings_status != 200:
            return web.Response(status=self.embeddings_status, text="no such route")
        self._embedding_calls += 1
        self.embedding_calls_at_once = max(self.embedding_calls_at_once, self._embedding_calls)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self._embedding_calls -= 1
        if self.embeddings_error is not None:
            return web.json_response(self.embeddings_error)
        inputs = body["input"]
        return web.json_response({"embedding": [self.embed(text) for text in inputs],
                                  "token_num": sum(len(text.split()) for text in inputs)})
