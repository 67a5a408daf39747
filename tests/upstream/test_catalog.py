"""What the catalog knows of each worker (its template and context length): fetched once and
shared, and forgotten the moment the worker fails, so a restarted worker is asked afresh."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastchat_api.config import ControllerConfig
from devstack.standin import VICUNA_V1_1_CONV
from fastchat_api.upstream.catalog import Catalog

from ..support import CHAT, FakeClock

FITS = {"max_tokens": 5}  # short enough that no /count_token call is made


class Workers:
    """The controller and worker routes the catalog calls; templates counted by worker."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    async def list_models(self) -> list[str]:
        return ["m"]

    async def list_multimodal_models(self) -> frozenset[str]:
        return frozenset()

    async def conv_template(self, worker: str, model: str) -> dict[str, Any]:
        self.asked[worker] += 1
        return dict(VICUNA_V1_1_CONV)

    async def context_length(self, worker: str, model: str) -> int:
        return {"http://w1": 2048, "http://w2": 4096}[worker]


async def test_facts_are_fetched_once_and_forgotten_only_for_the_failed_worker():
    workers = Workers()
    catalog = Catalog(workers, ControllerConfig(), facts_ttl=60, clock=FakeClock())  # type: ignore[arg-type]
    for _ in range(3):
        assert (await catalog.facts("http://w1", "m")).context_length == 2048
        assert (await catalog.facts("http://w2", "m")).context_length == 4096
    assert workers.asked == {"http://w1": 1, "http://w2": 1}
    catalog.forget("http://w1")
    await catalog.facts("http://w1", "m")
    await catalog.facts("http://w2", "m")
    assert workers.asked == {"http://w1": 2, "http://w2": 1}
    catalog.close()


async def test_after_a_worker_fails_its_facts_and_address_are_asked_afresh(client, fake):
    """Through the gateway: the worker's template, context length and the controller's pick
    are reused while it works, and asked again once it has failed (it may be a restarted
    worker with another model behind the same address)."""

    def asked() -> tuple[int, int, int]:
        return (len(fake.sent("/worker_get_conv_template")), len(fake.sent("/model_details")),
                len(fake.sent("/get_worker_address")))

    for _ in range(2):
        assert (await client.post("/v1/chat/completions", json=CHAT | FITS)).status == 200
    assert asked() == (1, 1, 1)
    fake.generate_status = 400  # a failure not worth a retry: one request, one failure
    assert (await client.post("/v1/chat/completions", json=CHAT | FITS)).status == 502
    assert asked() == (1, 1, 1)
    fake.generate_status = 200
    fake.context_length = 100  # what the worker says now is what counts
    assert (await client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 200})).status == 200
    assert asked() == (2, 2, 2)
    assert fake.sent("/worker_generate")[-1]["max_new_tokens"] == 90  # 100 less the 10 prompt tokens
