"""Chat messages with ``image_url`` parts: sent as ``images`` to a worker registered as
multimodal, a clear 400 for any other."""

from __future__ import annotations

from ..support import CHAT

URL = "data:image/png;base64,iVBORw0KGgo="
IMAGE_MESSAGE = {"role": "user", "content": [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": URL}},
]}


async def test_image_to_a_text_only_model_is_a_clear_400(client, fake):
    for path in ("/v1/chat/completions", "/api/v1/chat/completions"):
        resp = await client.post(path, json=CHAT | {"messages": [IMAGE_MESSAGE]})
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert error["code"] == "unsupported_value" and error["param"] == "messages"
        assert "does not accept images" in error["message"]
    assert fake.sent("/worker_generate") == []


async def test_image_to_a_multimodal_model_goes_to_the_worker(client, fake):
    fake.multimodal = ["fake-model"]
    resp = await client.post("/v1/chat/completions", json=CHAT | {"messages": [IMAGE_MESSAGE]})
    assert resp.status == 200, await resp.text()
    (params,) = fake.sent("/worker_generate")
    assert params["images"] == [URL]
    assert list(params)[-2:] == ["images", "stop"]
    assert "What is in this picture?" in params["prompt"]


async def test_text_only_requests_never_ask_for_the_multimodal_list(client, fake):
    parts = [{"type": "text", "text": "Hi"}]
    await client.post("/v1/chat/completions", json=CHAT)
    await client.post("/v1/chat/completions", json=CHAT | {"messages": [{"role": "user", "content": parts}]})
    assert fake.sent("/list_multimodal_models") == []
    assert "images" not in fake.sent("/worker_generate")[1]


async def test_multimodal_list_is_cached(client, fake):
    fake.multimodal = ["fake-model"]
    for _ in range(3):
        await client.post("/v1/chat/completions", json=CHAT | {"messages": [IMAGE_MESSAGE]})
    assert len(fake.sent("/list_multimodal_models")) == 1
