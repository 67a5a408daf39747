"""A FastChat controller and model worker in one small aiohttp app: the stand-in that the unit
tests, the fault tests and the benchmark talk to where FastChat's real worker would be too
slow, or too well-behaved to fail on cue.

It speaks the real wire protocol (NUL-separated cumulative frames, ``{"conv": ...}``,
``{"address": ...}``, registration and heartbeats), records every request it receives (path,
JSON body, when it started and ended by ``time.monotonic()``, the same clock in every process
on the machine, and whether it was answered or the caller hung up first) and answers as its
attributes script it: the pieces of text and the seconds before each frame, per model or per
prompt, failing statuses, an error frame, a stall.

In-process, in front of the gateway under test::

    stand_in = StandIn(pieces=["Hi", "!"])
    server = await aiohttp_server(stand_in.app())
    stand_in.address = str(server.make_url("")).rstrip("/")

As a process of its own (fault tests, benchmark)::

    python -m devstack.standin --port 21002 [--model NAME[:PIECES[:DELAY]]]...
        [--controller http://127.0.0.1:21001 [--heartbeat 0.5]] [--keep 10000]

``--model m:4:0.1`` serves model ``m``, whose answers are 4 pieces ``"tok "`` with 0.1 s before
each frame; ``--model j:4:0:"a": 1}`` one whose answer is that text in 4 pieces. ``GET /standin/requests`` answers what it received (the last ``--keep``), ``GET
/standin/calls`` how many requests came for each path (all of them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

__all__ = ["VICUNA_V1_1_CONV", "Answer", "StandIn", "keep_registered", "main"]

HOST = "127.0.0.1"

#: What a fschat 0.2.36 worker started with ``--conv-template vicuna_v1.1`` answers to
#: ``/worker_get_conv_template`` (the ``conv`` value).
VICUNA_V1_1_CONV = {
    "name": "vicuna_v1.1",
    "system_template": "{system_message}",
    "system_message": "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "roles": ["USER", "ASSISTANT"],
    "messages": [],
    "offset": 0,
    "sep_style": 2,  # ADD_COLON_TWO in fschat 0.2.36's numbering
    "sep": " ",
    "sep2": "</s>",
    "stop_str": None,
    "stop_token_ids": None,
}

# What FastChat's HF worker answers for a prompt its tokenizer reads as no token (one that adds
# no BOS token, given ""): torch's error, after FastChat's SERVER_ERROR_MSG.
_SERVER_ERROR = "**NETWORK ERROR DUE TO HIGH TRAFFIC. PLEASE REGENERATE OR REFRESH THIS PAGE.**"
NO_TOKEN_ERROR = {"text": f"{_SERVER_ERROR}\n\n(Expected tensor for argument #1 'indices' to have "
                          "one of the following scalar types: Long, Int; but got torch.FloatTensor "
                          "instead (while checking arguments for embedding))", "error_code": 50001}
NO_TOKEN_EMBEDDING_ERROR = {"text": f"{_SERVER_ERROR}\n\n(stack expects a non-empty TensorList)",
                            "error_code": 50001}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_body_key: web.RequestKey[Any] = web.RequestKey("standin_body")


@dataclass(frozen=True)
class Answer:
    """How one model answers: its text in pieces (one frame each), ``delay`` seconds before
    each frame of a stream and before a whole answer."""

    pieces: list[str]
    delay: float = 0.0


@dataclass
class StandIn:
    """Scripted controller + worker. ``address`` is the worker address the controller routes
    hand out: set it once the server runs."""

    models: list[str] = field(default_factory=lambda: ["fake-model"])
    multimodal: list[str] = field(default_factory=list)  # registered with multimodal: true
    conv: dict[str, Any] = field(default_factory=lambda: dict(VICUNA_V1_1_CONV))
    pieces: list[str] = field(default_factory=lambda: ["Hello", " there", ", friend", "!"])
    delay: float = 0.0  # seconds before each frame, a whole answer, an embeddings answer
    controller_delay: float = 0.0  # /list_models answers this late
    answers: dict[str, Answer] = field(default_factory=dict)  # pieces and delay by model
    replies: dict[str, list[str]] = field(default_factory=dict)  # pieces by prompt
    # The pieces of the next generations, one list each, taken in turn before any of the above
    # (``frames`` takes one).
    queue: list[list[str]] = field(default_factory=list)
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
    stall: float = 0.0  # a stream waits this long more before frame number ``stall_after``
    stall_after: int = 0
    address: str = ""
    dispatch: list[str] = field(default_factory=list)  # addresses handed out in turn (else its own)
    #: What it received, oldest first: dicts of path, body, started, ended and outcome
    #: (``"done"``, or ``"closed"`` when the caller hung up first); ``keep`` bounds it.
    requests: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)  # by path

    def app(self) -> web.Application:
        """The aiohttp application: FastChat's controller and worker routes, ``/standin/*``."""
        app = web.Application(client_max_size=64 * 1024**2, middlewares=[self._recorded])
        for path, handler in {
            "/list_models": self._list_models,
            "/list_multimodal_models": self._list_multimodal_models,
            "/refresh_all_workers": self._refresh,
            "/get_worker_address": self._worker_address,
            "/worker_get_status": self._status,
            "/worker_get_conv_template": self._conv,
            "/model_details": self._details,
            "/count_token": self._count,
            "/worker_generate": self._generate,
            "/worker_generate_stream": self._generate_stream,
            "/worker_get_embeddings": self._embeddings,
        }.items():
            app.router.add_post(path, handler)
        app.router.add_get("/standin/requests", self._requests_seen)
        app.router.add_get("/standin/calls", self._calls_seen)
        return app

    def keep(self, last: int) -> None:
        """Remember only the ``last`` requests (``calls`` still counts every one)."""
        self.requests = collections.deque(self.requests, maxlen=last)

    def sent(self, path: str) -> list[Any]:
        """The JSON bodies received on ``path``, oldest first."""
        return [entry["body"] for entry in self.requests if entry["path"] == path]

    def status(self) -> dict[str, Any]:
        """What a worker tells the controller about itself."""
        return {"model_names": self.models, "speed": 1, "queue_length": 0}

    def count(self, prompt: str) -> int:
        """The token count of ``prompt``: ``token_counts[prompt]``, else ``prompt_tokens``."""
        return self.token_counts.get(prompt, self.prompt_tokens)

    def answer(self, params: dict[str, Any]) -> Answer:
        """The pieces and delay for one generation's ``params`` (by prompt, model, default)."""
        scripted = self.answers.get(params.get("model", ""), Answer(self.pieces, self.delay))
        pieces = self.replies.get(params.get("prompt", ""), scripted.pieces)
        return Answer(pieces, scripted.delay)

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
        if self.count(prompt) == 0:
            return [NO_TOKEN_ERROR]
        pieces = self.queue.pop(0) if self.queue else self.answer(params).pieces
        echo = bool(params.get("echo"))
        text = prompt if echo else ""
        with_logprobs = params.get("logprobs") is not None
        frames: list[dict[str, Any]] = []
        for number, piece in enumerate(pieces):
            if self.error_frame is not None and number == self.error_after:
                return frames + [self.error_frame]
            text += piece
            frames.append(self._frame(prompt, text, pieces[: number + 1], with_logprobs, None, echo))
        if self.error_frame is not None:
            return frames + [self.error_frame]
        return frames + [self._frame(prompt, text, pieces, with_logprobs, self.finish_reason, echo)]

    @staticmethod
    def embed(text: str) -> list[float]:
        """A vector exact in float32, so base64 and float answers can be compared exactly."""
        return [len(text) / 8, -0.25, 0.125 * text.count(" ")]

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

    @web.middleware
    async def _recorded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Note each protocol request (not ``/standin/*``) with its body, times and outcome."""
        if request.path.startswith("/standin/"):
            return await handler(request)
        entry: dict[str, Any] = {"path": request.path, "body": None, "started": time.monotonic(),
                                 "ended": None, "outcome": None}
        self.requests.append(entry)
        self.calls[request.path] += 1
        try:
            raw = await request.read()
            entry["body"] = request[_body_key] = json.loads(raw) if raw else None
            response = await handler(request)
        except (asyncio.CancelledError, ConnectionResetError):
            entry["outcome"] = "closed"
            raise
        else:
            entry["outcome"] = "done"
            return response
        finally:
            entry["ended"] = time.monotonic()

    # -- controller routes ---------------------------------------------------------------------
    async def _list_models(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.controller_delay)
        return web.json_response({"models": self.models})

    async def _list_multimodal_models(self, request: web.Request) -> web.Response:
        return web.json_response({"models": self.multimodal})

    async def _refresh(self, request: web.Request) -> web.Response:
        return web.json_response(None)

    async def _worker_address(self, request: web.Request) -> web.Response:
        if request[_body_key]["model"] not in self.models:
            return web.json_response({"address": ""})
        if self.dispatch:
            self.dispatch.append(self.dispatch.pop(0))
            return web.json_response({"address": self.dispatch[-1]})
        return web.json_response({"address": self.address})

    # -- worker routes -------------------------------------------------------------------------
    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _conv(self, request: web.Request) -> web.Response:
        return web.json_response({"conv": self.conv})

    async def _details(self, request: web.Request) -> web.Response:
        return web.json_response({"context_length": self.context_length})

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self.count(request[_body_key]["prompt"]), "error_code": 0})

    async def _generate(self, request: web.Request) -> web.Response:
        params = request[_body_key]
        if self.generate_status != 200:
            return web.Response(status=self.generate_status, text="worker failed")
        await asyncio.sleep(self.answer(params).delay)
        return web.json_response(self.frames(params)[-1])

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        params = request[_body_key]
        if self.stream_status != 200:
            return web.Response(status=self.stream_status, text="worker failed")
        delay = self.answer(params).delay
        response = web.StreamResponse()
        await response.prepare(request)
        for number, frame in enumerate(self.frames(params)):
            wait = delay + (self.stall if number == self.stall_after else 0)
            if wait:
                await asyncio.sleep(wait)
            await response.write(json.dumps(frame).encode() + b"\0")
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
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
        inputs = request[_body_key]["input"]
        if all(self.count(text) == 0 for text in inputs):
            return web.json_response(NO_TOKEN_EMBEDDING_ERROR)
        return web.json_response({"embedding": [self.embed(text) for text in inputs],
                                  "token_num": sum(len(text.split()) for text in inputs)})

    # -- what it saw -----------------------------------------------------------------------------
    async def _requests_seen(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.requests))

    async def _calls_seen(self, request: web.Request) -> web.Response:
        return web.json_response(self.calls)


# -- as a process ------------------------------------------------------------------------------


async def keep_registered(session: aiohttp.ClientSession, controller: str, stand_in: StandIn,
                          heartbeat: float) -> None:
    """Register ``stand_in`` (at its ``address``) with the FastChat ``controller`` URL.

    With ``heartbeat`` > 0 seconds it sends a heartbeat that often and registers again whenever
    the controller has forgotten it (it restarted), as a real worker does but without its 45 s
    interval and 5 s retry; with 0 it registers once with ``check_heart_beat: false``, so that
    the controller keeps it without heartbeats, and returns. A controller that does not answer
    is tried again ``heartbeat`` (or 0.25) seconds later. Runs until cancelled.
    """
    registered = False
    while True:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            if registered:
                async with session.post(f"{controller}/receive_heart_beat", json={
                        "worker_name": stand_in.address, "queue_length": 0}) as resp:
                    registered = (await resp.json())["exist"]
            if not registered:
                async with session.post(f"{controller}/register_worker", json={
                        "worker_name": stand_in.address, "check_heart_beat": heartbeat > 0,
                        "multimodal": False, "worker_status": stand_in.status()}) as resp:
                    registered = resp.status == 200
        if registered and not heartbeat:
            return
        await asyncio.sleep(heartbeat or 0.25)


async def _registration(controller: str, stand_in: StandIn, heartbeat: float,
                        app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: registered with ``controller`` while the app runs."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        task = asyncio.create_task(keep_registered(session, controller, stand_in, heartbeat))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def parse_model(spec: str) -> tuple[str, Answer]:
    """``NAME[:PIECES[:DELAY[:TEXT]]]`` (PIECES default 4, DELAY seconds default 0) as a name
    and an :class:`Answer` of PIECES times ``"tok "``, or of TEXT (which may hold colons) cut
    into PIECES pieces; :class:`argparse.ArgumentTypeError` if malformed."""
    name, _, rest = spec.partition(":")
    pieces, _, rest = rest.partition(":")
    delay, _, text = rest.partition(":")
    try:
        count = int(pieces or 4)
        answer = Answer(_cut(text, count) if text else ["tok "] * count, float(delay or 0))
    except ValueError:
        answer = None
    if not name or answer is None or not answer.pieces or answer.delay < 0:
        raise argparse.ArgumentTypeError(f"bad --model {spec!r}: NAME[:PIECES[:DELAY[:TEXT]]]")
    return name, answer


def _cut(text: str, count: int) -> list[str]:
    """``text`` in ``count`` pieces (of one character at least) as even as they come."""
    count = min(count, len(text))
    bounds = [len(text) * i // count for i in range(count + 1)] if count > 0 else []
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


def make_app(args: argparse.Namespace) -> web.Application:
    """The stand-in the command line describes, registered with ``--controller`` if given."""
    models = dict(args.model or [parse_model("standin-model")])
    stand_in = StandIn(models=list(models), answers=models, address=f"http://{args.host}:{args.port}")
    stand_in.keep(args.keep)
    app = stand_in.app()
    if args.controller:
        app.cleanup_ctx.append(partial(_registration, args.controller.rstrip("/"), stand_in,
                                       args.heartbeat))
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.standin",
                                     description="A scripted FastChat controller + model worker.")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", type=parse_model, metavar="NAME[:PIECES[:DELAY[:TEXT]]]",
                        help="a model served (repeatable; default standin-model:4:0)")
    parser.add_argument("--controller", help="register with this FastChat controller URL")
    parser.add_argument("--heartbeat", type=float, default=0.5,
                        help="seconds between heartbeats; 0: register once, without heartbeats")
    parser.add_argument("--keep", type=int, default=10_000,
                        help="requests remembered for /standin/requests (default 10000)")
    args = parser.parse_args(argv)
    web.run_app(make_app(args), host=args.host, port=args.port, handler_cancellation=True,
                print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
