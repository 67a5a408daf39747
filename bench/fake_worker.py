"""A FastChat model-worker stand-in that answers at once, for benchmarks.

It speaks FastChat's worker protocol (POST routes, JSON bodies) well enough for both
FastChat's ``openai_api_server`` and ``fastchat_api``:

* ``/worker_generate_stream``: N ``\\0``-terminated JSON frames, each carrying the cumulative
  text so far, the last one with ``finish_reason``; optionally ``delay`` seconds between frames.
* ``/worker_generate``: the last of those frames.
* ``/worker_get_conv_template`` (vicuna_v1.1, as a fschat 0.2.36 worker sends it),
  ``/model_details``, ``/count_token``, ``/worker_get_status``, ``/worker_get_embeddings``.

One process can serve several model names, each with its own behaviour::

    python bench/fake_worker.py --port 21002 --controller-address http://127.0.0.1:21001 \\
        --model bench-model:16:0 --model bench-slow:10:1.0

``NAME:CHUNKS:DELAY`` = the model name, frames per generation, seconds between two frames.
The worker registers itself with the controller (``check_heart_beat: false``) once it listens,
so it stays registered without heartbeats. Only aiohttp and the standard library are used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import math
import signal
import struct
import sys
import time
import urllib.request
import zlib
from dataclasses import dataclass

from aiohttp import web

from fastchat_api.devstack import VICUNA_V1_1_CONV as VICUNA_V1_1

# The words the generated text is made of; one word is one "token".
WORDS = ("Hello", " there", "!", " I", " am", " a", " fast", " stand", "-in", " for", " a",
         " FastChat", " model", " worker", ",", " answering", " at", " once", ".")


@dataclass(frozen=True)
class Behaviour:
    chunks: int = 16
    delay: float = 0.0


def parse_model(spec: str) -> tuple[str, Behaviour]:
    name, *rest = spec.split(":")
    chunks = int(rest[0]) if rest and rest[0] else 16
    delay = float(rest[1]) if len(rest) > 1 and rest[1] else 0.0
    if not name or chunks < 1 or delay < 0:
        raise argparse.ArgumentTypeError(f"bad --model {spec!r}: NAME[:CHUNKS[:DELAY]]")
    return name, Behaviour(chunks, delay)


def count_tokens(text: str) -> int:
    """A cheap, deterministic stand-in for a tokenizer: ~4 characters a token, plus BOS."""
    return len(text) // 4 + 1


class FakeWorker:
    def __init__(self, models: dict[str, Behaviour], context_length: int) -> None:
        self.models = models
        self.default = next(iter(models.values()))
        self.context_length = context_length
        self.active_streams = 0
        self.served = 0
        self.calls: dict[str, int] = {}

    # -- helpers ------------------------------------------------------------------------
    def _behaviour(self, params: dict) -> Behaviour:
        return self.models.get(params.get("model"), self.default)

    @staticmethod
    def _frames(params: dict, behaviour: Behaviour) -> tuple[list[bytes], bytes]:
        """All frames of one generation (bytes, each ending with NUL) and the last as JSON."""
        prompt = str(params.get("prompt") or "")
        prompt_tokens = count_tokens(prompt)
        try:
            max_new = int(params.get("max_new_tokens") or 256)
        except (TypeError, ValueError):
            max_new = 256
        steps = max(1, min(behaviour.chunks, max_new))
        finish = "stop" if behaviour.chunks <= max_new else "length"
        text = prompt if params.get("echo") else ""
        frames = []
        last = b""
        for i in range(steps):
            text += WORDS[i % len(WORDS)]
            final = i == steps - 1
            last = json.dumps({
                "text": text,
                "error_code": 0,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": i + 1,
                          "total_tokens": prompt_tokens + i + 1},
                "finish_reason": finish if final else None,
                "logprobs": None,
            }).encode()
            frames.append(last + b"\0")
        return frames, last

    # -- routes -------------------------------------------------------------------------
    async def generate_stream(self, request: web.Request) -> web.StreamResponse:
        params = await request.json()
        behaviour = self._behaviour(params)
        frames, _ = self._frames(params, behaviour)
        response = web.StreamResponse()
        self.active_streams += 1
        try:
            await response.prepare(request)
            for i, frame in enumerate(frames):
                if i and behaviour.delay:
                    await asyncio.sleep(behaviour.delay)
                await response.write(frame)
            await response.write_eof()
        finally:
            self.active_streams -= 1
            self.served += 1
        return response

    async def generate(self, request: web.Request) -> web.Response:
        params = await request.json()
        behaviour = self._behaviour(params)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay * (behaviour.chunks - 1))
        _, last = self._frames(params, behaviour)
        self.served += 1
        return web.Response(body=last, content_type="application/json")

    async def conv_template(self, request: web.Request) -> web.Response:
        return web.json_response({"conv": VICUNA_V1_1})

    async def model_details(self, request: web.Request) -> web.Response:
        return web.json_response({"context_length": self.context_length})

    async def count_token(self, request: web.Request) -> web.Response:
        params = await request.json()
        return web.json_response({"count": count_tokens(str(params.get("prompt") or "")),
                                  "error_code": 0})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status_dict())

    def status_dict(self) -> dict:
        return {"model_names": list(self.models), "speed": 1, "queue_length": 0}

    async def embeddings(self, request: web.Request) -> web.Response:
        params = await request.json()
        inputs = params.get("input") or []
        if isinstance(inputs, str):
            inputs = [inputs]
        vectors = []
        for text in inputs:
            seed = zlib.crc32(str(text).encode())
            raw = [float((seed >> k) % 97 + 1) for k in range(8)]
            norm = math.sqrt(sum(v * v for v in raw))
            vectors.append([v / norm for v in raw])
        if params.get("encoding_format") == "base64":
            vectors = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
        token_num = sum(count_tokens(str(t)) for t in inputs)
        return web.json_response({"embedding": vectors, "token_num": token_num})

    async def stats(self, request: web.Request) -> web.Response:
        """Not FastChat: what the benchmark reads to see the stand-in's side."""
        return web.json_response({"active_streams": self.active_streams, "served": self.served,
                                  "calls": self.calls})

    @web.middleware
    async def count(self, request: web.Request, handler):
        self.calls[request.path] = self.calls.get(request.path, 0) + 1
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self.count])
        app.add_routes([
            web.post("/worker_generate_stream", self.generate_stream),
            web.post("/worker_generate", self.generate),
            web.post("/worker_get_conv_template", self.conv_template),
            web.post("/model_details", self.model_details),
            web.post("/count_token", self.count_token),
            web.post("/worker_get_status", self.status),
            web.post("/worker_get_embeddings", self.embeddings),
            web.get("/bench_stats", self.stats),
        ])
        return app


def register(controller: str, worker_url: str, status: dict, timeout: float = 30.0) -> None:
    """POST /register_worker until the controller takes it (it may still be starting)."""
    body = json.dumps({"worker_name": worker_url, "check_heart_beat": False,
                       "worker_status": status}).encode()
    deadline = time.monotonic() + timeout
    while True:
        req = urllib.request.Request(f"{controller.rstrip('/')}/register_worker", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"fake_worker: cannot register with {controller}: {exc}")
            time.sleep(0.25)


async def serve(args: argparse.Namespace) -> None:
    worker = FakeWorker(dict(args.model), args.context_length)
    runner = web.AppRunner(worker.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    url = args.worker_address or f"http://{args.host}:{args.port}"
    if args.controller_address and not args.no_register:
        await asyncio.to_thread(register, args.controller_address, url, worker.status_dict())
    print(f"fake_worker: {url} serving {', '.join(worker.models)} "
          f"({', '.join(f'{n}: {b.chunks} chunks, {b.delay} s apart' for n, b in worker.models.items())})",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=21002)
    parser.add_argument("--worker-address", default=None,
                        help="URL registered with the controller (default http://HOST:PORT)")
    parser.add_argument("--controller-address", default="http://127.0.0.1:21001")
    parser.add_argument("--no-register", action="store_true")
    parser.add_argument("--model", action="append", type=parse_model, default=None,
                        help="NAME[:CHUNKS[:DELAY]] (repeatable; default bench-model:16:0)")
    parser.add_argument("--context-length", type=int, default=2048)
    args = parser.parse_args(argv)
    if not args.model:
        args.model = [parse_model("bench-model:16:0")]
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
