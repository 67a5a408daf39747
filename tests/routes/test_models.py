"""``GET /v1/models`` and ``GET /v1/models/{model}``."""

from __future__ import annotations


async def test_models_are_sorted_with_fastchat_fields(client, fake):
    fake.models = ["zeta", "alpha"]
    resp = await client.get("/v1/models")
    body = await resp.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["alpha", "zeta"]
    card = body["data"][0]
    assert card["owned_by"] == "fastchat" and card["root"] == "alpha" and card["parent"] is None
    assert card["permission"][0]["object"] == "model_permission"
    assert fake.sent("/refresh_all_workers"), "dead workers are dropped as FastChat does"


async def test_model_list_is_cached_briefly(client, fake):
    await client.get("/v1/models")
    fetched = len(fake.sent("/list_models"))  # as the app started, or for this request
    await client.get("/v1/models")
    assert len(fake.sent("/list_models")) == fetched


async def test_retrieve_model(client, fake):
    resp = await client.get("/v1/models/fake-model")
    assert resp.status == 200
    assert (await resp.json())["id"] == "fake-model"
    resp = await client.get("/v1/models/other")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "model_not_found"


async def test_a_model_gone_from_the_list_is_a_503_for_the_outage_grace_then_a_404(clock, make_client, fake):
    """A restarted controller lists nothing until the workers' next heartbeat: clients are told
    to retry, not that the model does not exist."""
    client = await make_client(controller={"outage_grace": 30, "model_list_ttl": 0})
    assert (await client.get("/v1/models/fake-model")).status == 200
    fake.models = []
    assert (await client.get("/v1/models")).status == 200  # /v1/models lists afresh
    resp = await client.get("/v1/models/fake-model")
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert (await resp.json())["error"]["code"] == "upstream_unavailable"
    assert (await client.get("/v1/models/never-listed")).status == 404
    clock.advance(29)
    assert (await client.get("/v1/models/fake-model")).status == 503
    clock.advance(1)
    assert (await client.get("/v1/models/fake-model")).status == 404
