"""A FastChat model worker stand-in as a process of its own, for the fault and soak tests.

It is :class:`tests.fake_fastchat.FakeFastChat` (the worker protocol, and a controller's routes
answering for itself alone) served with handler cancellation, plus what a real worker cannot
give a test:

* ``GET /standin/requests``: every request it received, with when it started and ended
  (``time.monotonic()``, the same clock in every process on the machine) and how: ``done``, or
  ``closed`` when the caller closed the connection first. That is how a test sees how soon the
  gateway lets go of a worker.
* With ``--controller`` it registers with a FastChat controller and sends a heartbeat every
  ``--heartbeat`` seconds, registering again whenever the controller does not know it (as a
  real worker does, but without its 45 s interval and 5 s retry), so a restarted controller
  learns of it at once.

    python -m tests.worker_standin --port 21002 --model m [--pieces 4] [--delay 0.1]
        [--controller http://127.0.0.1:21001] [--heartbeat 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

from tests.fake_fastchat import FakeFastChat

HOST = "127.0.0.1"


def recorder(records: list[dict[str, Any]]) -> Any:
    """A middleware noting each request's start, end and outcome in ``records``."""

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        entry = {"path": request.path, "started": time.monotonic(), "ended": None, "outcome": None}
        records.append(entry)
        try:
            response = await handler(request)
        except (asyncio.CancelledError, ConnectionResetError):
            entry["outcome"] = "closed"
            raise
        else:
            entry["outcome"] = "done"
            return response
        finally:
            entry["ended"] = time.monotonic()

    return record


async def keep_registered(session: aiohttp.ClientSession, controller: str, me: str,
                          models: list[str], interval: float) -> None:
    """Register, then heartbeat every ``interval``; register again when the controller has
    forgotten us (it restarted). Failures (the controller is down) are retried next time."""
    registered = False
    while True:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            if registered:
                async with session.post(f"{controller}/receive_heart_beat",
                                        json={"worker_name": me, "queue_length": 0}) as resp:
                    registered = (await resp.json())["exist"]
            if not registered:
                async with session.post(f"{controller}/register_worker", json={
                    "worker_name": me, "check_heart_beat": True, "multimodal": False,
                    "worker_status": {"model_names": models, "speed": 1, "queue_length": 0},
                }) as resp:
                    registered = resp.status == 200
        await asyncio.sleep(interval)


def make_app(args: argparse.Namespace) -> web.Application:
    me = f"http://{HOST}:{args.port}"
    fake = FakeFastChat(models=[args.model], pieces=["tok "] * args.pieces, delay=args.delay,
                        address=me)
    records: list[dict[str, Any]] = []
    app = fake.app()
    app.middlewares.append(recorder(records))

    async def requests_seen(request: web.Request) -> web.Response:
        return web.json_response(records)

    async def status(request: web.Request) -> web.Response:
        """What a worker tells the controller about itself."""
        return web.json_response({"model_names": fake.models, "speed": 1, "queue_length": 0})

    async def registration(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            task = asyncio.create_task(
                keep_registered(session, args.controller, me, fake.models, args.heartbeat))
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.router.add_get("/standin/requests", requests_seen)
    app.router.add_post("/worker_get_status", status)
    if args.controller:
        app.cleanup_ctx.append(registration)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.worker_standin")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="standin-model")
    parser.add_argument("--pieces", type=int, default=4, help="text pieces (frames) per answer")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each frame")
    parser.add_argument("--controller", help="register with this FastChat controller")
    parser.add_argument("--heartbeat", type=float, default=0.5)
    args = parser.parse_args()
    web.run_app(make_app(args), host=HOST, port=args.port, handler_cancellation=True,
                print=None, access_log=None, backlog=2048)


if __name__ == "__main__":
    main()
