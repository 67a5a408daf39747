"""Keys for teams across processes: gateways (gunicorn with two workers, two ``python -m
fastchat_api``) sharing one real ``redis-server`` enforce one limit; Redis stopped mid-run;
the key file reloaded without a restart; the official client's RateLimitError and its retry
after Retry-After. The worker is the stand-in: what it answers does not matter here."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
import yaml

from ..support import STANDIN_MODEL

pytestmark = pytest.mark.integration

KEY = "sk-team-a"
CHAT = {"model": STANDIN_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


def post_chat(base: str, key: str = KEY) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One chat request on a new connection: status, headers (lower-case names), body."""
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=json.dumps(CHAT).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.load(resp)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, json.load(exc)


def limited(redis_url: str, **key: Any) -> dict[str, Any]:
    """Config sections: one key with ``key``'s attributes, limits in Redis."""
    return {"auth": {"keys": [{"key": KEY, "name": "team-a", **key}]},
            "limits": {"redis_url": redis_url}}


@pytest.fixture
def worker(rig):
    return rig.standin(pieces=2)


@pytest.fixture
def redis(rig):
    return rig.stack.start_redis()


def test_rpm_5_gives_exactly_5_answers_across_gunicorn_workers_and_processes(rig, worker, redis):
    sections = limited(redis.url, rpm=5)
    gateways = [rig.gateway(worker.url, gunicorn=True, workers=2, **sections),
                rig.gateway(worker.url, **sections), rig.gateway(worker.url, **sections)]
    answers = [post_chat(gateway.url) for gateway in itertools.islice(itertools.cycle(gateways), 15)]
    assert [status for status, _, _ in answers].count(200) == 5
    assert [status for status, _, _ in answers[5:]] == [429] * 10
    status, headers, body = answers[-1]
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert "requests per minute (rpm): limit 5" in body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 12
    assert headers["x-ratelimit-limit-requests"] == "5"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert [h["x-ratelimit-remaining-requests"] for _, h, _ in answers[:5]] == ["4", "3", "2", "1", "0"]


def test_redis_stopped_mid_run_follows_the_configured_choice(rig, worker, redis):
    serving = rig.gateway(worker.url, **limited(redis.url, rpm=100))
    refusing = rig.gateway(worker.url, **(limited(redis.url, rpm=100) | {
        "limits": {"redis_url": redis.url, "on_redis_error": "refuse", "redis_timeout": 0.2}}))
    for gateway in (serving, refusing):
        status, headers, _ = post_chat(gateway.url)
        assert status == 200 and headers["x-ratelimit-limit-requests"] == "100"
    redis.stop()
    started = time.monotonic()
    status, headers, _ = post_chat(serving.url)
    assert status == 200 and "x-ratelimit-limit-requests" not in headers
    status, headers, body = post_chat(refusing.url)
    assert status == 503 and headers["retry-after"] == "1"
    assert body["error"]["code"] == "limits_unavailable"
    assert time.monotonic() - started < 5  # short timeouts, never a hang
    rig.stack.start_redis(redis.port)
    deadline = time.monotonic() + 10
    while (answer := post_chat(refusing.url))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer[0] == 200 and answer[1]["x-ratelimit-limit-requests"] == "100"


def test_the_key_file_changes_limits_without_a_restart(rig, worker, redis, tmp_path):
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(yaml.safe_dump([{"key": KEY, "name": "team-a", "rpm": 1}]))
    sections = {"auth": {"keys_file": str(keys_file)}, "limits": {"redis_url": redis.url}}
    gateways = [rig.gateway(worker.url, **sections), rig.gateway(worker.url, **sections)]
    assert [post_chat(g.url)[0] for g in gateways] == [200, 429]
    keys_file.write_text(yaml.safe_dump([{"key": KEY, "name": "team-a", "rpm": 50}]))
    for gateway in gateways:
        deadline = time.monotonic() + 10  # each process looks at the file once a second
        while (answer := post_chat(gateway.url))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer[0] == 200 and answer[1]["x-ratelimit-limit-requests"] == "50"


def test_the_official_client_raises_rate_limit_error_and_honours_retry_after(rig, worker, redis):
    gateway = rig.gateway(worker.url, **limited(redis.url, rpm=30))  # one more every 2 s
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    for _ in range(30):
        client.chat.completions.create(**CHAT)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**CHAT)
    assert refused.value.code == "rate_limit_exceeded"
    wait = int(refused.value.response.headers["retry-after"])
    assert 1 <= wait <= 2
    started = time.monotonic()
    answer = client.with_options(max_retries=1).chat.completions.create(**CHAT)
    assert answer.choices[0].message.content
    assert time.monotonic() - started >= 0.5  # it waited as told before trying again
