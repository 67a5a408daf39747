"""Faults with real processes on loopback: workers killed, the controller stopped and started
again, clients hanging up, the gateway stopped with SIGTERM. Each test starts its own processes
(FastChat's real controller, worker stand-ins, our server), so nothing here breaks the
session's shared stack."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import openai
import pytest

from ..support import STANDIN_MODEL, connect, request, sse_events, standin_requests, streamed_text, until

pytestmark = pytest.mark.integration

HI = [{"role": "user", "content": "Hi"}]
CHAT = {"model": STANDIN_MODEL, "messages": HI}
STREAM = "/worker_generate_stream"
GENERATE = ("/worker_generate", STREAM)


@pytest.fixture
def client_for():
    """The official client of a gateway, without retries; closed after the test."""
    clients: list[openai.OpenAI] = []

    def connect(gateway) -> openai.OpenAI:
        clients.append(openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="EMPTY",
                                     max_retries=0, timeout=30))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


def serving(*standins) -> Any:
    """The stand-in with a stream in progress."""
    for _ in range(100):
        for proc in standins:
            if any(r["path"] == STREAM and r["ended"] is None for r in standin_requests(proc)):
                return proc
        time.sleep(0.05)
    raise AssertionError("no stand-in is streaming")


def generations(proc) -> int:
    return sum(r["path"] in GENERATE for r in standin_requests(proc))


def kill(proc) -> None:
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(10)


def chat_works(client: openai.OpenAI, stream: bool) -> bool:
    """One whole answer, streamed or not."""
    if not stream:
        return client.chat.completions.create(model=STANDIN_MODEL, messages=HI).choices[0].finish_reason == "stop"
    chunks = list(client.chat.completions.create(model=STANDIN_MODEL, messages=HI, stream=True))
    return chunks[-1].choices[0].finish_reason == "stop"


# -- workers dying -----------------------------------------------------------------------------


def test_a_worker_killed_mid_stream_ends_it_with_an_error_event_and_serving_goes_on(rig, client_for):
    controller = rig.controller()
    slow = [rig.standin(pieces=200, delay=0.05, controller=controller.url) for _ in range(2)]
    rig.stack.wait_for_models([STANDIN_MODEL])
    client = client_for(rig.gateway(controller.url))
    chunks = iter(client.chat.completions.create(model=STANDIN_MODEL, messages=HI, stream=True))
    assert next(chunks).choices[0].delta.role == "assistant"
    assert next(chunks).choices[0].delta.content
    dead = serving(*slow)
    kill(dead)
    with pytest.raises(openai.APIError, match="failed|closed|disconnected"):
        for _ in chunks:
            pass
    # Whole answers (the stand-ins sleep 50 ms before one): the dead worker is retried away.
    for _ in range(6):
        assert chat_works(client, stream=False)


def test_two_workers_one_killed_requests_keep_succeeding(rig, client_for):
    controller = rig.controller()
    workers = [rig.standin(controller=controller.url) for _ in range(2)]
    rig.stack.wait_for_models([STANDIN_MODEL])
    gateway = rig.gateway(controller.url, controller={"refresh_interval": 0.05})
    client = client_for(gateway)
    deadline = time.monotonic() + 15
    while not all(generations(worker) for worker in workers):  # both in use
        assert chat_works(client, stream=False) and time.monotonic() < deadline
    dead, alive = workers
    kill(dead)
    served = generations(alive)
    for number in range(20):
        assert chat_works(client, stream=bool(number % 2))
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda n: chat_works(client, stream=bool(n % 2)), range(24)))
    assert generations(alive) == served + 44


def test_controller_outage_cached_within_the_grace_then_503_then_recovery(rig, client_for):
    grace = 3.0
    controller = rig.controller()
    rig.standin(controller=controller.url)
    rig.stack.wait_for_models([STANDIN_MODEL])
    gateway = rig.gateway(controller.url, controller={
        "outage_grace": grace, "model_list_ttl": 0.5, "worker_address_ttl": 1.0, "refresh_interval": 0.2})
    client = client_for(gateway)
    assert chat_works(client, stream=False)
    port = controller.port
    controller.stop()
    stopped = time.monotonic()
    assert [m.id for m in client.models.list()] == [STANDIN_MODEL]  # the last list, kept
    answers: list[tuple[float, Any]] = []
    while time.monotonic() - stopped < grace + 5:
        try:
            assert chat_works(client, stream=bool(len(answers) % 2))
            answers.append((time.monotonic() - stopped, 200))
        except openai.APIStatusError as exc:
            answers.append((time.monotonic() - stopped, exc))
            break
        time.sleep(0.1)
    first_error = answers[-1]
    assert all(status == 200 for _, status in answers[:-1])
    # Served from the cache for the grace (less the age of the cache when the outage began).
    assert grace - 1 <= first_error[0] <= grace + 2, answers
    error = first_error[1]
    assert error.status_code == 503 and error.response.headers["Retry-After"]
    assert error.body["code"] == "controller_unreachable"

    rig.controller(port)  # the stand-in registers again at its next heartbeat
    restarted = time.monotonic()
    while True:
        try:
            assert chat_works(client, stream=False)
            break
        except openai.APIStatusError as exc:  # until the stand-in's next heartbeat
            assert exc.status_code == 503 and exc.response.headers["Retry-After"]
            assert time.monotonic() - restarted < 10
            time.sleep(0.1)


# -- clients hanging up ------------------------------------------------------------------------


async def hang_up(gateway, body: dict[str, Any], standin, started: str) -> float:
    """Send ``body`` over a raw connection, close it once the worker is busy (``started``:
    the first event reached the client, or the worker got the request), and return the seconds
    from the close to the last upstream request ending, as the worker saw it."""
    async with connect(gateway) as connection:
        await connection.send(request("POST", "/v1/chat/completions", {"Content-Type": "application/json"},
                                      json.dumps(body).encode(), close=False))
        if started == "event":
            await asyncio.wait_for(connection.reader.readuntil(b"data: "), 10)
        else:
            await until(lambda: generations(standin) >= body.get("n", 1), "the worker's requests",
                        timeout=10, every=0.01)
        await asyncio.sleep(0.05)
        closed = time.monotonic()
        await connection.close()
    upstream: list[dict[str, Any]] = []

    def ended() -> bool:
        upstream[:] = [r for r in standin_requests(standin) if r["path"] in GENERATE]
        return all(r["ended"] for r in upstream)

    await until(ended, lambda: f"the worker still generates for nobody: {upstream}", timeout=5, every=0.02)
    assert {r["outcome"] for r in upstream} == {"closed"}
    return max(r["ended"] for r in upstream) - closed


@pytest.mark.parametrize("n", [1, 2])
async def test_a_client_hanging_up_mid_stream_closes_the_upstream_within_100ms(rig, n):
    standin = rig.standin(pieces=200, delay=0.05)
    gateway = rig.gateway(standin.url)
    lag = await hang_up(gateway, CHAT | {"stream": True, "n": n}, standin, started="event")
    assert lag < 0.1


@pytest.mark.parametrize("n", [1, 2])
async def test_a_client_hanging_up_mid_request_closes_the_upstream_within_100ms(rig, n):
    standin = rig.standin(delay=30)  # a whole answer comes after 30 s
    gateway = rig.gateway(standin.url)
    lag = await hang_up(gateway, CHAT | {"n": n, "max_tokens": 8}, standin, started="worker")
    assert lag < 0.1


# -- SIGTERM -----------------------------------------------------------------------------------


async def read_stream(session: aiohttp.ClientSession, url: str, first: asyncio.Event) -> list[Any]:
    """A chat stream's events to its ``[DONE]``; ``first`` is set when the first arrives."""
    raw = b""
    async with session.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}) as resp:
        assert resp.status == 200
        async for line in resp.content:
            raw += line
            first.set()
    return sse_events(raw)


async def refused_within(gateway, seconds: float) -> None:
    """New connections are refused (or reset, when the listening socket closes with them in
    its backlog) within ``seconds``."""

    async def refused() -> bool:
        try:
            async with connect(gateway):
                return False
        except (ConnectionRefusedError, ConnectionResetError):
            return True

    await until(refused, "connections refused", timeout=seconds, every=0.05)


async def streams_then_sigterm(gateway, count: int, refused: float) -> tuple[list[list[Any]], float]:
    """``count`` streams; SIGTERM once each has begun; their events, and the seconds from the
    signal to the process's exit (status 0). New connections are refused within ``refused``."""
    async with aiohttp.ClientSession() as session:
        begun = [asyncio.Event() for _ in range(count)]
        streams = [asyncio.create_task(read_stream(session, gateway.url, event)) for event in begun]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in begun)), 10)
        gateway.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await refused_within(gateway, refused)
        results = await asyncio.wait_for(asyncio.gather(*streams), 30)
    code = await asyncio.to_thread(gateway.popen.wait, 30)
    assert code == 0
    return results, time.monotonic() - signalled


# aiohttp's gunicorn worker notices SIGTERM at its next once-a-second check, and closes its
# listening socket then; run_app at once.
REFUSED_WITHIN = {False: 0.2, True: 1.5}


@pytest.mark.parametrize("gunicorn", [False, True], ids=["run_app", "gunicorn"])
async def test_sigterm_lets_streams_finish_within_the_grace_period(rig, gunicorn):
    standin = rig.standin(pieces=15, delay=0.1)  # 1.6 s streams
    gateway = rig.gateway(standin.url, gunicorn=gunicorn, server={"shutdown_timeout": 10})
    results, took = await streams_then_sigterm(gateway, 4, REFUSED_WITHIN[gunicorn])
    for chunks in results:
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert streamed_text(chunks) == "tok " * 15
    assert took < 5


@pytest.mark.parametrize("gunicorn", [False, True], ids=["run_app", "gunicorn"])
async def test_sigterm_ends_streams_outliving_the_grace_period_with_an_error_event(rig, gunicorn):
    standin = rig.standin(pieces=200, delay=0.1)  # 20 s streams
    gateway = rig.gateway(standin.url, gunicorn=gunicorn, server={"shutdown_timeout": 1})
    results, took = await streams_then_sigterm(gateway, 4, REFUSED_WITHIN[gunicorn])
    for *_, error in results:
        assert error["error"]["code"] == "server_shutting_down"
    assert took < 4
