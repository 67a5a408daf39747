"""The chat pipeline's ``n`` choices: when one fails, the others' generations are stopped, in a
whole answer and in a stream alike."""

from __future__ import annotations

import asyncio

import pytest

from fastchat_api.typedefs import upstream_key

from ..support import CHAT, HANG_GUARD, Generations, read_events, until, with_text


@pytest.mark.parametrize("fail", [0, 2])
async def test_a_failing_choice_cancels_the_others(client, monkeypatch, fail):
    generations = Generations(count=3, fail=fail)
    monkeypatch.setattr(client.app[upstream_key].client, "generate", generations.generate)
    async with asyncio.timeout(HANG_GUARD):
        resp = await client.post("/v1/chat/completions", json=CHAT | {"n": 3})
    assert resp.status == 502
    assert (await resp.json())["message"] == f"Generation {fail} failed"
    await until(lambda: len(generations.ended) == 2, timeout=1)
    assert sorted(generations.ended) == generations.others()


@pytest.mark.parametrize("fail", [0, 2])
async def test_a_choice_failing_mid_stream_cancels_the_others(client, monkeypatch, fail):
    generations = Generations(count=3, fail=fail)
    monkeypatch.setattr(client.app[upstream_key].client, "generate_stream", generations.generate_stream)
    async with asyncio.timeout(HANG_GUARD):
        resp = await client.post("/v1/chat/completions", json=CHAT | {"n": 3, "stream": True})
        *chunks, error = await read_events(resp)
    assert resp.status == 200
    assert len(with_text(chunks)) == 3  # every choice's first frame went out
    assert error["error"]["message"] == f"Generation {fail} failed"
    assert sorted(generations.ended) == generations.others()
