"""The worker balancer: the controller's choices reused briefly, refreshed in the background, dropped on
failure, kept through a controller outage for a bounded time."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from fastchat_api import errors
from fastchat_api.config import ControllerConfig
from fastchat_api.upstream.balancer import Balancer

from ..support import FakeClock


class Controller:
    """A dispatch that hands out workers in turn, like shortest-queue with equal queues."""

    def __init__(self, *workers: str) -> None:
        self.workers = itertools.cycle(workers)
        self.asked = 0
        self.down = False

    async def ask(self, model: str) -> str:
        self.asked += 1
        if self.down:
            raise errors.controller_unreachable("controller down")
        return next(self.workers)


def router(controller: Controller, clock: FakeClock | None = None, **kwargs: float) -> Balancer:
    options = {"worker_address_ttl": 5.0, "refresh_interval": 0.0, "outage_grace": 30.0} | kwargs
    return Balancer(controller.ask, ControllerConfig(**options), clock=clock or FakeClock())


async def test_first_pick_asks_then_reuses():
    controller = Controller("http://w1")
    r = router(controller, refresh_interval=60)
    assert [await r.pick("m") for _ in range(5)] == ["http://w1"] * 5
    assert controller.asked == 1


async def test_background_refresh_spreads_over_every_worker_the_controller_names():
    controller = Controller("http://w1", "http://w2")
    r = router(controller)
    picks = []
    for _ in range(20):
        picks.append(await r.pick("m"))
        await asyncio.sleep(0)
    assert set(picks) == {"http://w1", "http://w2"}
    await r.close()


async def test_a_failed_worker_is_dropped_at_once():
    controller = Controller("http://w1", "http://w2")
    r = router(controller, refresh_interval=60)
    first = await r.pick("m")
    r.drop(first)
    assert await r.pick("m") != first


async def test_workers_the_controller_stops_naming_age_out():
    controller, clock = Controller("http://w1"), FakeClock()
    r = router(controller, clock, worker_address_ttl=5, refresh_interval=60)
    await r.pick("m")
    clock.advance(4)
    await r.pick("m")
    assert controller.asked == 1
    clock.advance(2)
    await r.pick("m")
    assert controller.asked == 2


async def test_controller_outage_keeps_known_workers_for_the_grace_period():
    controller, clock = Controller("http://w1"), FakeClock()
    r = router(controller, clock, worker_address_ttl=5, refresh_interval=0.0, outage_grace=30)
    assert await r.pick("m") == "http://w1"
    controller.down = True
    clock.advance(6)
    assert await r.pick("m") == "http://w1"  # expired, controller down: within the grace
    assert await r.pick("m") == "http://w1"
    clock.advance(31)
    with pytest.raises(errors.APIError) as caught:
        await r.pick("m")
    assert caught.value.status == 503
    controller.down = False
    assert await r.pick("m") == "http://w1"
    await r.close()
