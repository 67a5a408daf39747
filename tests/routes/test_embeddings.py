"""``POST /v1/embeddings`` and the engines route against the stand-in: batches sent at once,
vectors in input order, base64 that decodes to the same floats."""

from __future__ import annotations

import base64
from array import array

import pytest

from devstack.standin import StandIn
from fastchat_api.config import ConfigError, build_config

from ..support import openai_spec

NINE = [f"input number {i}" + " more" * i for i in range(9)]


def float32(encoded: str) -> list[float]:
    """What the openai client does with base64: little-endian float32."""
    values = array("f")
    values.frombytes(base64.b64decode(encoded))
    return values.tolist()


async def embed(client, path="/v1/embeddings", **fields):
    return await client.post(path, json={"model": "fake-model", "input": "Hello world"} | fields)


async def test_one_input_as_floats(client, fake):
    resp = await embed(client, encoding_format="float")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    openai_spec.validate("CreateEmbeddingResponse", body)
    assert body == {
        "object": "list",
        "data": [{"object": "embedding", "embedding": StandIn.embed("Hello world"), "index": 0}],
        "model": "fake-model",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    assert fake.sent("/worker_get_embeddings") == [
        {"model": "fake-model", "input": ["Hello world"], "encoding_format": None}
    ]


async def test_nine_inputs_go_in_concurrent_batches_of_four_and_come_back_in_order(client, fake):
    fake.delay = 0.1
    resp = await embed(client, input=NINE)
    body = await resp.json()
    assert [d["index"] for d in body["data"]] == list(range(9))
    assert [d["embedding"] for d in body["data"]] == [StandIn.embed(text) for text in NINE]
    batches = fake.sent("/worker_get_embeddings")
    assert sorted(len(b["input"]) for b in batches) == [1, 4, 4]
    assert fake.embedding_calls_at_once == 3
    assert len(fake.sent("/get_worker_address")) == 3  # each batch asks the controller
    tokens = sum(len(text.split()) for text in NINE)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


async def test_base64_decodes_to_the_float_answer(client, fake):
    floats = await (await embed(client, input=NINE, encoding_format="float")).json()
    encoded = await (await embed(client, input=NINE, encoding_format="base64")).json()
    assert [float32(d["embedding"]) for d in encoded["data"]] == [d["embedding"] for d in floats["data"]]
    # the worker is asked for floats either way: its own base64 is in the model's dtype
    assert {b["encoding_format"] for b in fake.sent("/worker_get_embeddings")} == {None}


async def test_batch_size_comes_from_the_config(make_client, fake):
    client = await make_client(upstream={"embedding_batch_size": 2})
    await embed(client, input=NINE)
    assert sorted(len(b["input"]) for b in fake.sent("/worker_get_embeddings")) == [1, 2, 2, 2, 2]


def test_batch_size_defaults_to_fastchat_environment_variable(monkeypatch):
    monkeypatch.delenv("FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE", raising=False)
    assert build_config().upstream.embedding_batch_size == 4
    monkeypatch.setenv("FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE", "7")
    assert build_config().upstream.embedding_batch_size == 7
    assert build_config({"upstream": {"embedding_batch_size": 3}}).upstream.embedding_batch_size == 3
    monkeypatch.setenv("FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE", "many")
    with pytest.raises(ConfigError, match="FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE"):
        build_config()


async def test_engines_route_takes_the_model_from_the_path(client, fake):
    resp = await client.post("/v1/engines/fake-model/embeddings", json={"input": ["a", "b"]})
    body = await resp.json()
    assert body["model"] == "fake-model" and len(body["data"]) == 2
    resp = await client.post("/v1/engines/other/embeddings", json={"input": "a", "model": "fake-model"})
    assert resp.status == 200  # the body's model wins, as in FastChat


async def test_model_name_query_parameter(client, fake):
    resp = await client.post("/v1/embeddings?model_name=fake-model", json={"input": "a"})
    assert resp.status == 200


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"dimensions": 64}, "dimensions", "dimensions is not supported"),
        ({"input": [1, 2, 3]}, "input", "Token ids are not supported"),
        ({"input": [[1, 2]]}, "input", "Token ids are not supported"),
        ({"input": []}, "input", "non-empty list of strings"),
        ({"encoding_format": "int8"}, "encoding_format", "Must be one of"),
    ],
)
async def test_refused_fields_are_a_clear_400(client, fake, fields, param, words):
    resp = await embed(client, **fields)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["param"] == param and words in body["error"]["message"]
    assert fake.sent("/worker_get_embeddings") == []


async def test_unknown_or_missing_model_is_a_404(client, fake):
    resp = await embed(client, model="nope")
    assert resp.status == 404
    resp = await client.post("/v1/embeddings", json={"input": "a"})
    assert resp.status == 404
    assert (await resp.json())["message"].endswith("your model None")


async def test_worker_without_embeddings_route_is_a_clear_400(client, fake):
    fake.embeddings_status = 404  # FastChat's vLLM and SGLang workers
    resp = await embed(client)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "unsupported_value"
    assert "does not compute embeddings" in error["message"]


async def test_worker_error_is_relayed(client, fake):
    fake.embeddings_error = {"text": "CUDA out of memory", "error_code": 50002}
    resp = await embed(client)
    assert resp.status == 503
    body = await resp.json()
    assert body["code"] == 50002 and "error code 50002 (CUDA_OUT_OF_MEMORY)" in body["message"]
