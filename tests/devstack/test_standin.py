"""devstack.standin: the scripted worker's own behaviour, as a process would run it (per-model
answers, what it records, registering with a controller), in-process."""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from devstack.standin import Answer, StandIn, keep_registered, make_app, parse_model

from ..support import until


def test_model_specs():
    assert parse_model("m") == ("m", Answer(["tok "] * 4, 0.0))
    assert parse_model("m:2:0.5") == ("m", Answer(["tok "] * 2, 0.5))
    assert parse_model('j:3:0:"a": 1}') == ("j", Answer(['"a', '":', ' 1}'], 0.0))  # colons kept
    assert parse_model("j:9:0:ab") == ("j", Answer(["a", "b"], 0.0))  # no piece empty
    for bad in ("", ":3", "m:x", "m:0", "m:2:-1", "m:2:y", "m:0:0:text"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_model(bad)


async def test_each_model_answers_as_scripted_and_every_request_is_recorded(aiohttp_client):
    args = argparse.Namespace(model=[parse_model("fast:3:0"), parse_model("slow:2:0.2")],
                              host="127.0.0.1", port=1, keep=2, controller=None, heartbeat=0)
    client = await aiohttp_client(make_app(args))
    frames = []
    for model in ("fast", "slow"):
        resp = await client.post("/worker_generate_stream", json={"model": model, "prompt": "p"})
        frames.append([json.loads(f) for f in (await resp.read()).split(b"\0") if f])
    assert [f["text"] for f in frames[0]] == ["tok ", "tok tok ", "tok tok tok ", "tok tok tok "]
    assert [f["finish_reason"] for f in frames[1]] == [None, None, "stop"]
    assert (await (await client.post("/list_models")).json()) == {"models": ["fast", "slow"]}

    seen = await (await client.get("/standin/requests")).json()
    assert [r["path"] for r in seen] == ["/worker_generate_stream", "/list_models"]  # the last 2
    assert seen[0]["body"] == {"model": "slow", "prompt": "p"} and seen[0]["outcome"] == "done"
    assert seen[0]["ended"] - seen[0]["started"] >= 0.55  # 0.2 s before each of 3 frames
    assert await (await client.get("/standin/calls")).json() == {
        "/worker_generate_stream": 2, "/list_models": 1}


async def test_a_caller_hanging_up_is_recorded_as_closed(aiohttp_server):
    stand_in = StandIn(delay=0.2)
    server = await aiohttp_server(stand_in.app())  # the test server cancels handlers
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.post(server.make_url("/worker_generate"), json={"prompt": "p"},
                               timeout=aiohttp.ClientTimeout(total=0.05))
    await until(lambda: stand_in.requests[0]["ended"], "the request's end")
    assert stand_in.requests[0]["outcome"] == "closed"


class Controller:
    """The two controller routes a worker calls; forgets its workers on ``restart()``."""

    def __init__(self) -> None:
        self.registered: list[dict] = []
        self.heartbeats = 0
        self.known: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/register_worker", self.register)
        app.router.add_post("/receive_heart_beat", self.heartbeat)
        return app

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.registered.append(body)
        self.known.add(body["worker_name"])
        return web.json_response(None)

    async def heartbeat(self, request: web.Request) -> web.Response:
        self.heartbeats += 1
        return web.json_response({"exist": (await request.json())["worker_name"] in self.known})


async def test_without_heartbeats_it_registers_once_and_is_never_dropped(aiohttp_server):
    controller = Controller()
    server = await aiohttp_server(controller.app())
    stand_in = StandIn(models=["m"], address="http://127.0.0.1:9")
    async with aiohttp.ClientSession() as session:
        await asyncio.wait_for(keep_registered(session, str(server.make_url("")).rstrip("/"),
                                               stand_in, heartbeat=0), 5)
    assert controller.registered == [{
        "worker_name": "http://127.0.0.1:9", "check_heart_beat": False, "multimodal": False,
        "worker_status": {"model_names": ["m"], "speed": 1, "queue_length": 0}}]
    assert controller.heartbeats == 0


async def test_with_heartbeats_it_registers_again_with_a_restarted_controller(aiohttp_server):
    controller = Controller()
    server = await aiohttp_server(controller.app())
    stand_in = StandIn(models=["m"], address="http://127.0.0.1:9")
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(keep_registered(
            session, str(server.make_url("")).rstrip("/"), stand_in, heartbeat=0.05))
        try:
            await until(lambda: controller.heartbeats >= 2, "two heartbeats")
            assert len(controller.registered) == 1
            assert controller.registered[0]["check_heart_beat"] is True
            controller.known.clear()  # restarted: it knows no worker
            await until(lambda: len(controller.registered) == 2, "the registration again")
        finally:
            task.cancel()
