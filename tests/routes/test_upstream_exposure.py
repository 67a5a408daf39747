"""What a client reads of an upstream failure, and what the log keeps: no credentials anywhere,
internal addresses only with ``upstream.expose_addresses``, never a worker's own error text;
the log line carries the address, the text and the request id."""

from __future__ import annotations

import logging

import pytest

from fastchat_api.errors import redacted

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}]}
DEAD = "127.0.0.1:9"  # nothing listens on the discard port
SECRET = "s3cret-pass"
TORCH = "RuntimeError: CUDA error: device-side assert triggered at /opt/torch/aten/indexing.cu"


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def answer(resp) -> tuple[str, str]:
    """The raw body and the request id the client was given."""
    return await resp.text(), resp.headers["X-Request-Id"]


def test_credentials_are_masked_and_plain_urls_kept():
    assert redacted(f"http://admin:{SECRET}@ctl.internal:21001/x") == "http://***@ctl.internal:21001/x"
    assert redacted("http://admin@ctl.internal:21001") == "http://***@ctl.internal:21001"
    assert redacted("http://10.0.0.5:21002/worker_generate") == "http://10.0.0.5:21002/worker_generate"


@pytest.mark.parametrize("path", ["/ready", "/v1/models", "/v1/chat/completions"])
async def test_controller_credentials_and_address_never_reach_a_client(make_client, caplog, path):
    client = await make_client(controller={"address": f"http://admin:{SECRET}@{DEAD}"})
    with caplog.at_level(logging.WARNING):
        resp = await (client.post(path, json=CHAT) if path.endswith("completions") else client.get(path))
        body, request_id = await answer(resp)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "controller_unreachable"
    assert SECRET not in body and "admin" not in body and DEAD not in body
    assert "cannot be reached" in body
    lines = [line for line in logged(caplog) if request_id in line]
    assert lines and f"http://***@{DEAD}" in lines[0] and "Cannot connect to host" in lines[0]
    assert not any(SECRET in r.getMessage() for r in caplog.records)


async def test_an_operator_may_expose_addresses_but_never_credentials(make_client, caplog):
    client = await make_client(controller={"address": f"http://admin:{SECRET}@{DEAD}"},
                               upstream={"expose_addresses": True})
    resp = await client.get("/ready")
    message = (await resp.json())["error"]["message"]
    assert message.startswith("Not ready: The controller cannot be reached")
    assert message.endswith(f"[at http://***@{DEAD}]") and SECRET not in message


def _worker_fails(fake, how: str) -> None:
    if how == "http_status":
        fake.generate_status = 500
    elif how == "worker_error":
        fake.error_frame = {"text": TORCH, "error_code": 50001}
    elif how == "connection":
        fake.dispatch = [f"http://{DEAD}"]
    elif how == "template":
        fake.conv = {**fake.conv, "sep_style": 99}


@pytest.mark.parametrize("how, status", [
    ("http_status", 502), ("worker_error", 502), ("connection", 502), ("template", 500),
])
@pytest.mark.parametrize("expose", [False, True])
async def test_worker_failures_name_the_worker_only_when_exposed(make_client, fake, caplog, how,
                                                                 status, expose):
    client = await make_client(upstream={"expose_addresses": expose})
    _worker_fails(fake, how)
    worker = f"http://{DEAD}" if how == "connection" else fake.address
    with caplog.at_level(logging.WARNING):
        resp = await client.post("/v1/chat/completions", json=CHAT)
        body, request_id = await answer(resp)
    assert resp.status == status
    assert (worker in body) is expose
    assert TORCH not in body
    assert any(request_id in line and worker in line for line in logged(caplog))


async def test_a_worker_timeout_names_the_worker_only_when_exposed(make_client, fake):
    fake.delay = 1.0
    for expose in (False, True):
        client = await make_client(upstream={"read_timeout": 0.1, "expose_addresses": expose})
        resp = await client.post("/v1/chat/completions", json=CHAT)
        assert resp.status == 504
        assert (fake.address in await resp.text()) is expose


async def test_embeddings_unsupported_does_not_name_the_worker(client, fake):
    fake.embeddings_status = 404
    resp = await client.post("/v1/embeddings", json={"model": "fake-model", "input": "hi"})
    assert resp.status == 400
    assert fake.address not in await resp.text()


@pytest.mark.parametrize("stream, error_after", [(False, 0), (True, 0), (True, 2)])
async def test_a_worker_error_text_is_logged_not_sent(client, fake, caplog, stream, error_after):
    """Whole answers, streams failing before their first frame (an HTTP error) and mid-stream
    (an in-band event): the client reads FastChat's code, the log the worker's text."""
    fake.error_frame, fake.error_after = {"text": TORCH, "error_code": 50001}, error_after
    with caplog.at_level(logging.WARNING):
        resp = await client.post("/v1/chat/completions", json=CHAT | {"stream": stream})
        body, request_id = await answer(resp)
    assert resp.status == (200 if error_after else 502)
    assert TORCH not in body and "torch" not in body
    assert "FastChat error code 50001 (INTERNAL_ERROR)" in body
    assert "logged its message under this request's X-Request-Id" in body
    lines = [line for line in logged(caplog) if request_id in line]
    assert len(lines) == 1 and TORCH in lines[0] and f"{fake.address}/worker_generate" in lines[0]


async def test_out_of_gpu_memory_is_still_a_503_without_the_text(client, fake):
    fake.error_frame = {"text": "CUDA out of memory. Tried to allocate 2.00 GiB", "error_code": 50002}
    resp = await client.post("/v1/completions", json={"model": "fake-model", "prompt": "Hi"})
    assert resp.status == 503
    body = await resp.json()
    assert body["code"] == 50002 and "GiB" not in body["message"]
    assert "50002 (CUDA_OUT_OF_MEMORY)" in body["error"]["message"]
