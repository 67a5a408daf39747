"""Keys for teams through the gateway: access to models, limits with OpenAI's 429 and headers,
tokens settled after the answer, slots freed however a request ends, the models' cap, expiry,
key files, metrics and the access log by key name (the stand-in as FastChat)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from fastchat_api import keys
from fastchat_api.app import create_app
from fastchat_api.config import ConfigError, build_config
from fastchat_api.limits.limiter import MemoryStorage
from fastchat_api.typedefs import keys_key, limiter_key

from ..support import CHAT, MODEL, FakeClock, delta, read_events, scrape, until, value
from ..support import connect, request as raw_request

OTHER = "other-model"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def keyed(make_client, *entries: dict, clock: FakeClock | None = None, **sections):
    """The gateway with these ``auth.keys`` (and a plain key ``sk-plain``), its in-process
    limits on ``clock`` when given."""
    auth = {"api_keys": ["sk-plain"], "keys": list(entries)} | sections.pop("auth", {})
    client = await make_client(auth=auth, **sections)
    if clock is not None:
        client.app[limiter_key].storage = MemoryStorage(clock)
    return client


async def chat(client, key: str, **body):
    return await client.post("/v1/chat/completions", json=CHAT | body, headers=bearer(key))


# -- access ------------------------------------------------------------------------------------


@pytest.fixture
def two_models(fake):
    fake.models.append(OTHER)
    return fake


async def test_models_list_only_what_the_key_may_use(make_client, two_models):
    client = await keyed(make_client, {"key": "sk-a", "name": "team-a", "models": ["fake-*"]})
    listed = await (await client.get("/v1/models", headers=bearer("sk-a"))).json()
    assert [card["id"] for card in listed["data"]] == [MODEL]
    everything = await (await client.get("/v1/models", headers=bearer("sk-plain"))).json()
    assert sorted(card["id"] for card in everything["data"]) == sorted([MODEL, OTHER])


async def test_a_model_the_key_may_not_use_is_answered_as_one_that_does_not_exist(make_client, two_models):
    client = await keyed(make_client, {"key": "sk-a", "models": ["fake-*"]})
    for path in ("/v1/models/{}",):
        hidden = await client.get(path.format(OTHER), headers=bearer("sk-a"))
        missing = await client.get(path.format("no-such"), headers=bearer("sk-a"))
        assert hidden.status == missing.status == 404
        assert (await hidden.text()).replace(OTHER, "X") == (await missing.text()).replace("no-such", "X")
    hidden, missing = await chat(client, "sk-a", model=OTHER), await chat(client, "sk-a", model="no-such")
    assert hidden.status == missing.status == 404
    body = await hidden.json()
    assert body["error"]["code"] == "model_not_found" and OTHER not in body["message"].split(",")[0]
    assert json.dumps(body).replace(OTHER, "X") == json.dumps(await missing.json()).replace("no-such", "X")
    assert body["message"] == f"Only {MODEL} allowed now, your model {OTHER}"
    assert (await chat(client, "sk-a")).status == 200


async def test_token_check_and_embeddings_keep_to_the_key_s_models(make_client, two_models):
    client = await keyed(make_client, {"key": "sk-a", "models": [MODEL]})
    check = await client.post("/api/v1/token_check", headers=bearer("sk-a"), json={
        "prompts": [{"model": OTHER, "prompt": "hi", "max_tokens": 1}]})
    assert check.status == 404
    embed = await client.post("/v1/embeddings", headers=bearer("sk-a"), json={"model": OTHER, "input": "x"})
    assert embed.status == 404 and (await embed.json())["error"]["code"] == "model_not_found"


# -- limits ------------------------------------------------------------------------------------


async def test_past_rpm_a_429_in_openai_s_shape_with_retry_after_and_headers(make_client):
    clock = FakeClock()
    client = await keyed(make_client, {"key": "sk-a", "name": "team-a", "rpm": 2}, clock=clock)
    first, second = await chat(client, "sk-a"), await chat(client, "sk-a")
    assert (first.status, second.status) == (200, 200)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"] == "30s"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.headers["x-ratelimit-reset-requests"] == "1m0s"
    refused = await chat(client, "sk-a")
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    body = await refused.json()
    assert body["error"]["code"] == "rate_limit_exceeded" and body["code"] == 42901
    assert "team-a" in body["error"]["message"]
    assert "requests per minute (rpm): limit 2" in body["error"]["message"]
    clock.advance(30)
    assert (await chat(client, "sk-a")).status == 200


async def test_plain_keys_and_no_keys_get_no_rate_headers(make_client, client):
    limited = await keyed(make_client, {"key": "sk-a", "rpm": 2})
    for resp in (await chat(limited, "sk-plain"), await chat(client, "any")):
        assert resp.status == 200
        assert not [name for name in resp.headers if name.lower().startswith("x-ratelimit")]


async def test_tokens_are_charged_before_and_settled_with_the_usage_after(make_client):
    client = await keyed(make_client, {"key": "sk-a", "tpm": 1000}, clock=FakeClock())
    resp = await chat(client, "sk-a", max_tokens=200, messages=[{"role": "user", "content": "x" * 40}])
    # estimate: 200 to generate + 40 characters / 4
    assert resp.headers["x-ratelimit-remaining-tokens"] == str(1000 - 210)
    used = (await resp.json())["usage"]["total_tokens"]
    stream = await chat(client, "sk-a", max_tokens=200, stream=True)
    assert stream.headers["x-ratelimit-remaining-tokens"] == str(1000 - used - 201)
    events = await read_events(stream)
    assert events
    after = await chat(client, "sk-a", max_tokens=0)
    assert after.headers["x-ratelimit-remaining-tokens"] == str(1000 - 2 * used - 1)


async def test_past_tpm_a_429_naming_the_tokens(make_client):
    client = await keyed(make_client, {"key": "sk-a", "name": "t", "tpm": 100}, clock=FakeClock())
    assert (await chat(client, "sk-a", max_tokens=90)).status == 200  # settled to 14
    refused = await chat(client, "sk-a", max_tokens=90)
    assert refused.status == 429
    message = (await refused.json())["error"]["message"]
    assert "tokens per minute (tpm): limit 100, requested 91" in message
    assert refused.headers["x-ratelimit-limit-tokens"] == "100"
    assert int(refused.headers["Retry-After"]) >= 1


async def test_tools_and_past_calls_are_charged_before_the_request_as_text(make_client):
    client = await keyed(make_client, {"key": "sk-a", "tpm": 100}, clock=FakeClock())
    assert (await chat(client, "sk-a", max_tokens=10)).status == 200  # settled to 14
    tool = {"type": "function", "function": {"name": "f", "description": "d" * 800}}
    refused = await chat(client, "sk-a", max_tokens=10, tools=[tool])
    assert refused.status == 429, await refused.text()
    assert "requested 211" in (await refused.json())["error"]["message"]  # 10 + ("Hi" + 800 d + "{}") / 4
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": json.dumps({"a": "d" * 800})}}
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "tool_calls": [call]}]
    refused = await chat(client, "sk-a", max_tokens=10, messages=history)
    assert "requested 213" in (await refused.json())["error"]["message"]  # 10 + ("Hi" + 809 characters) / 4
    history[1] = {"role": "assistant", "content": None, "function_call": call["function"]}  # the legacy form
    refused = await chat(client, "sk-a", max_tokens=10, messages=history)
    assert "requested 213" in (await refused.json())["error"]["message"]


async def test_a_request_that_failed_gives_its_tokens_back(make_client, fake):
    client = await keyed(make_client, {"key": "sk-a", "tpm": 100}, clock=FakeClock())
    fake.generate_status = 500
    assert (await chat(client, "sk-a", max_tokens=90)).status == 502
    fake.generate_status = 200
    resp = await chat(client, "sk-a", max_tokens=90)
    assert resp.status == 200 and resp.headers["x-ratelimit-remaining-tokens"] == "9"


async def test_max_parallel_refuses_the_request_past_it_and_frees_slots_as_requests_end(make_client, fake):
    client = await keyed(make_client, {"key": "sk-a", "name": "team-a", "max_parallel": 1})
    fake.delay = 0.3
    first = asyncio.create_task(chat(client, "sk-a"))
    await until(lambda: fake.calls["/worker_generate"] == 1)
    refused = await chat(client, "sk-a")
    assert refused.status == 429 and refused.headers["Retry-After"] == "1"
    assert "requests in flight (max_parallel): limit 1" in (await refused.json())["error"]["message"]
    assert (await first).status == 200
    fake.delay = 0
    assert (await chat(client, "sk-a")).status == 200


async def test_a_slot_is_freed_when_the_request_fails(make_client, fake):
    client = await keyed(make_client, {"key": "sk-a", "max_parallel": 1})
    fake.generate_status = 500
    assert (await chat(client, "sk-a")).status == 502
    fake.generate_status = 200
    assert (await chat(client, "sk-a")).status == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_a_slot_is_freed_when_the_client_hangs_up(make_client, fake, stream):
    client = await keyed(make_client, {"key": "sk-a", "max_parallel": 1})
    storage = client.app[limiter_key].storage
    fake.delay = 30  # the worker never answers in the test's time
    body = json.dumps(CHAT | {"stream": stream}).encode()
    async with connect(client.server) as connection:
        await connection.send(raw_request("POST", "/v1/chat/completions",
                                          bearer("sk-a") | {"Content-Type": "application/json"}, body))
        await until(lambda: fake.calls["/worker_generate" + ("_stream" if stream else "")] == 1)
        assert storage._held  # the slot is taken
    await until(lambda: not storage._held)
    fake.delay = 0
    assert (await chat(client, "sk-a")).status == 200


async def test_the_models_cap_is_a_503_with_retry_after_for_any_key(make_client, fake):
    client = await make_client(limits={"model_max_parallel": 1})
    fake.delay = 0.3
    first = asyncio.create_task(chat(client, "any"))
    await until(lambda: fake.calls["/worker_generate"] == 1)
    busy = await chat(client, "any")
    assert busy.status == 503 and busy.headers["Retry-After"] == "1"
    body = await busy.json()
    assert body["error"]["code"] == "model_overloaded" and MODEL in body["error"]["message"]
    assert (await first).status == 200


async def test_a_key_s_limits_are_its_own(make_client):
    client = await keyed(make_client, {"key": "sk-a", "rpm": 1}, {"key": "sk-b", "rpm": 1})
    assert (await chat(client, "sk-a")).status == 200
    assert (await chat(client, "sk-a")).status == 429
    assert (await chat(client, "sk-b")).status == 200
    assert (await chat(client, "sk-plain")).status == 200


async def test_completions_and_embeddings_count_too(make_client):
    client = await keyed(make_client, {"key": "sk-a", "rpm": 2})
    completion = await client.post("/v1/completions", headers=bearer("sk-a"),
                                   json={"model": MODEL, "prompt": "Once"})
    embedding = await client.post("/v1/embeddings", headers=bearer("sk-a"),
                                  json={"model": MODEL, "input": "x"})
    assert (completion.status, embedding.status) == (200, 200)
    assert embedding.headers["x-ratelimit-remaining-requests"] == "0"
    assert (await chat(client, "sk-a")).status == 429


# -- Redis failing -----------------------------------------------------------------------------


async def test_redis_unreachable_serves_without_limits_when_so_configured(make_client, caplog, unused_tcp_port):
    client = await keyed(make_client, {"key": "sk-a", "rpm": 1},
                         limits={"redis_url": f"redis://127.0.0.1:{unused_tcp_port}/0"})
    before = await scrape(client)
    with caplog.at_level(logging.WARNING, logger="fastchat_api.limits"):
        for _ in range(3):
            resp = await chat(client, "sk-a")
            assert resp.status == 200 and "x-ratelimit-limit-requests" not in resp.headers
    assert delta(before, await scrape(client), "fastchat_api_limits_unchecked_total", outcome="served") == 3
    warnings = [r for r in caplog.records if r.name == "fastchat_api.limits"]
    assert len(warnings) == 1 and "served without limits" in warnings[0].getMessage()


async def test_redis_unreachable_is_a_503_when_so_configured(make_client, unused_tcp_port):
    client = await keyed(make_client, {"key": "sk-a", "rpm": 1},
                         limits={"redis_url": f"redis://127.0.0.1:{unused_tcp_port}/0",
                                 "on_redis_error": "refuse"})
    resp = await chat(client, "sk-a")
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"]["code"] == "limits_unavailable"
    assert (await chat(client, "sk-plain")).status == 200  # nothing to check for a plain key


# -- keys: expiry, files, errors ---------------------------------------------------------------


async def test_an_expired_key_is_a_401_saying_so(make_client):
    client = await keyed(make_client, {"key": "sk-old", "expires": "2020-01-31"},
                         {"key": "sk-new", "expires": "2999-01-01"})
    old = await chat(client, "sk-old")
    assert old.status == 401
    assert (await old.json())["error"]["message"] == "This API key expired on 2020-01-31."
    assert (await chat(client, "sk-new")).status == 200


def test_a_key_works_through_its_last_day_utc():
    from datetime import date, datetime, timezone
    key = keys.Key("k", expires=date(2030, 5, 1))
    assert not key.expired(datetime(2030, 5, 1, 23, 59, 59, tzinfo=timezone.utc))
    assert key.expired(datetime(2030, 5, 2, tzinfo=timezone.utc))


@pytest.mark.parametrize(("entries", "error"), [
    ([{"key": "sk-a", "rpm": 0}], "auth.keys.0.rpm: Must be greater than 0"),
    ([{"key": "sk-a", "tpm": 1.5}], "auth.keys.0.tpm: Not a valid integer"),
    ([{"key": "sk-a", "models": "llama"}], "auth.keys.0.models: Not a valid list"),
    ([{"key": "sk-a", "expires": "soon"}], "auth.keys.0.expires: Not a valid date"),
    ([{"key": "sk-a", "name": "a b"}], "auth.keys.0.name: Not a key name"),
    ([{"name": "a"}], "auth.keys.0.key: Missing data for required field"),
    ([{"key": "sk-a", "colour": "red"}], "auth.keys.0.colour: Unknown field"),
])
def test_an_invalid_entry_stops_the_start_with_one_line(entries, error):
    with pytest.raises(ConfigError, match=f"^config: {error}"):
        build_config({"auth": {"keys": entries}})


@pytest.mark.parametrize(("auth", "error"), [
    ({"keys": [{"key": "sk-a"}, {"key": "sk-a", "rpm": 1}]}, "is given twice"),
    ({"api_keys": ["sk-a"], "keys": [{"key": "sk-a", "rpm": 1}]}, "is given twice"),
    ({"keys": [{"key": "sk-a", "name": "t"}, {"key": "sk-b", "name": "t"}]}, "the name t is given to two keys"),
])
def test_a_key_or_name_given_twice_stops_the_start(auth, error):
    with pytest.raises(ConfigError, match=error):
        create_app(build_config({"auth": auth}))


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("- key: sk-f\n  name: team-f\n  rpm: 1\n")
    return path


async def test_the_key_file_changes_limits_without_a_restart(make_client, keys_file, monkeypatch):
    monkeypatch.setattr(keys, "CHECK_INTERVAL", 0.0)
    client = await make_client(auth={"keys_file": str(keys_file)})
    assert (await chat(client, "sk-f")).status == 200
    assert (await chat(client, "sk-f")).status == 429
    keys_file.write_text("- key: sk-f\n  name: team-f\n  rpm: 10\n")
    resp = await chat(client, "sk-f")
    assert resp.status == 200 and resp.headers["x-ratelimit-limit-requests"] == "10"


async def test_an_invalid_key_file_at_reload_keeps_the_keys_in_force(make_client, keys_file, caplog):
    client = await make_client(auth={"keys_file": str(keys_file)})
    store = client.app[keys_key]
    keys_file.write_text("- key: sk-f\n  rpm: lots\n")
    with caplog.at_level(logging.ERROR, logger="fastchat_api.keys"):
        store.reload()
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert error.startswith(f"auth.keys_file: {keys_file}: 0.rpm: Not a valid integer")
    assert "1 keys in force are kept" in error
    assert store.identify("sk-f") == keys.Key("team-f", rpm=1)


@pytest.mark.parametrize(("text", "error"), [
    ("key: sk-f\n", "expected a list of keys"),
    ("- key: sk-f\n  rpm: [\n", "not valid YAML"),
    ("- key: sk-f\n  rpm: -1\n", "0.rpm: Must be greater than 0"),
])
def test_an_invalid_key_file_stops_the_start(keys_file, text, error):
    keys_file.write_text(text)
    with pytest.raises(ConfigError, match=f"auth.keys_file: {keys_file}: .*{error}"):
        create_app(build_config({"auth": {"keys_file": str(keys_file)}}))


# -- usage: metrics and the access log by key name ---------------------------------------------


async def test_requests_tokens_and_refusals_are_counted_by_key_name(make_client):
    client = await keyed(make_client, {"key": "sk-a", "name": "team-a", "rpm": 1})
    before = await scrape(client)
    usage = (await (await chat(client, "sk-a")).json())["usage"]
    assert (await chat(client, "sk-a")).status == 429
    after = await scrape(client)
    labels = {"key": "team-a", "model": MODEL}
    assert delta(before, after, "fastchat_api_key_requests_total", status="200", **labels) == 1
    assert delta(before, after, "fastchat_api_key_requests_total", status="429", **labels) == 1
    assert delta(before, after, "fastchat_api_key_tokens_total", type="prompt", **labels) == usage["prompt_tokens"]
    assert delta(before, after, "fastchat_api_key_tokens_total", type="completion",
                 **labels) == usage["completion_tokens"]
    assert delta(before, after, "fastchat_api_rate_limited_total", key="team-a", limit="rpm") == 1
    assert value(after, "fastchat_api_key_requests_total", key="", model=MODEL, status="200") == 0
