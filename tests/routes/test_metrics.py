"""``GET /metrics``: counters and histograms move as requests flow through the gateway."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from fastchat_api import metrics

from ..support import CHAT, COMPLETION, EMBEDDING, delta, scrape, until, value

ROUTE = "/v1/chat/completions"


async def test_a_chat_counts_request_latency_and_tokens(client):
    before = await scrape(client)
    resp = await client.post(ROUTE, json=CHAT)
    assert resp.status == 200
    after = await scrape(client)
    assert delta(before, after, "fastchat_api_requests_total",
                 route=ROUTE, model="fake-model", status="200") == 1
    assert delta(before, after, "fastchat_api_request_duration_seconds_count",
                 route=ROUTE, model="fake-model") == 1
    assert delta(before, after, "fastchat_api_prompt_tokens_total", model="fake-model") == 10
    assert delta(before, after, "fastchat_api_completion_tokens_total", model="fake-model") == 4
    assert delta(before, after, "fastchat_api_requests_total",
                 route="/metrics", model="", status="200") == 1


async def test_a_stream_counts_first_token_and_tokens_without_include_usage(client):
    before = await scrape(client)
    resp = await client.post(ROUTE, json=CHAT | {"stream": True})
    await resp.read()
    after = await scrape(client)
    assert delta(before, after, "fastchat_api_time_to_first_token_seconds_count", model="fake-model") == 1
    assert delta(before, after, "fastchat_api_completion_tokens_total", model="fake-model") == 4
    assert delta(before, after, "fastchat_api_requests_total",
                 route=ROUTE, model="fake-model", status="200") == 1
    assert value(after, "fastchat_api_streams_in_flight") == value(before, "fastchat_api_streams_in_flight")


async def test_in_flight_requests_and_streams_while_a_stream_runs(client, fake):
    fake.delay = 0.05  # the stream is still running at the second scrape
    before = await scrape(client)
    resp = await client.post(ROUTE, json=CHAT | {"stream": True})
    await resp.content.readline()  # the stream is open
    during = await scrape(client)
    await resp.read()
    assert delta(before, during, "fastchat_api_streams_in_flight") == 1
    assert delta(before, during, "fastchat_api_requests_in_flight") == 1  # the stream, beside the scrape
    after = await scrape(client)
    assert delta(before, after, "fastchat_api_streams_in_flight") == 0
    assert delta(before, after, "fastchat_api_requests_in_flight") == 0


async def test_errors_count_with_their_status_and_upstream_failures_by_worker(client, fake):
    before = await scrape(client)
    fake.generate_status = 500
    assert (await client.post(ROUTE, json=CHAT)).status == 502
    assert (await client.get("/v2/nothing")).status == 404
    after = await scrape(client)
    assert delta(before, after, "fastchat_api_requests_total",
                 route=ROUTE, model="fake-model", status="502") == 1
    assert delta(before, after, "fastchat_api_requests_total", route="other", model="", status="404") == 1
    # the failed request was tried once more (on the only worker there is) before the 502
    assert delta(before, after, "fastchat_api_upstream_errors_total",
                 worker=fake.address, kind="http_status") == 2
    assert delta(before, after, "fastchat_api_retries_total", worker=fake.address) == 1


async def test_unreachable_controller_counts_as_a_connection_error(make_client):
    client = await make_client(controller={"address": "http://127.0.0.1:9"})
    before = await scrape(client)
    assert (await client.get("/v1/models")).status == 503
    after = await scrape(client)
    # /v1/models asks the controller to re-poll its workers, then for the list: both fail
    assert delta(before, after, "fastchat_api_upstream_errors_total",
                 worker="controller", kind="connection") == 2


def test_retries_counter_is_there_for_whoever_retries():
    def count() -> float:
        return REGISTRY.get_sample_value("fastchat_api_retries_total", {"worker": "http://w:1"}) or 0
    before = count()
    metrics.retry("http://w:1")
    assert count() == before + 1


async def test_metrics_token_is_separate_from_api_keys(make_client):
    client = await make_client(auth={"api_keys": ["sk-api"]}, metrics={"token": "scrape-me"})
    for headers in ({}, {"Authorization": "Bearer sk-api"}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_metrics_token"
    await scrape(client, Authorization="Bearer scrape-me")
    resp = await client.get("/v1/models", headers={"Authorization": "Bearer scrape-me"})
    assert resp.status == 401


async def test_metrics_are_open_without_a_token_even_when_keys_are_set(make_client):
    client = await make_client(auth={"api_keys": ["sk-api"]})
    await scrape(client)


async def test_cancelled_stream_counts_as_499(client, fake):
    fake.delay = 0.05  # the stream is still running when the client leaves
    before = await scrape(client)
    resp = await client.post(ROUTE, json=CHAT | {"stream": True})
    await resp.content.readline()
    resp.close()
    labels = {"route": ROUTE, "model": "fake-model", "status": "499"}
    scrapes = []

    async def counted() -> bool:  # once the gateway has noticed the client is gone
        scrapes.append(await scrape(client))
        return delta(before, scrapes[-1], "fastchat_api_requests_total", **labels) > 0

    await until(counted)
    after = scrapes[-1]
    assert delta(before, after, "fastchat_api_requests_total", **labels) == 1
    assert delta(before, after, "fastchat_api_streams_in_flight") == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_completions_count_tokens_by_model(client, stream):
    before = await scrape(client)
    resp = await client.post("/v1/completions", json=COMPLETION | {"stream": stream})
    await resp.read()
    after = await scrape(client)
    assert delta(before, after, "fastchat_api_completion_tokens_total", model="fake-model") == 4
    assert delta(before, after, "fastchat_api_requests_total",
                 route="/v1/completions", model="fake-model", status="200") == 1


async def test_embeddings_count_prompt_tokens_by_model(client):
    before = await scrape(client)
    resp = await client.post("/v1/embeddings", json=EMBEDDING | {"input": ["a", "b"]})
    assert resp.status == 200
    after = await scrape(client)
    assert delta(before, after, "fastchat_api_prompt_tokens_total", model="fake-model") > 0
