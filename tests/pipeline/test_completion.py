"""The completions pipeline's choices (``n`` for each prompt): when one fails, every other
prompt's and choice's generation is stopped, in a whole answer and in a stream alike."""

from __future__ import annotations

import asyncio

import pytest

from fastchat_api.typedefs import upstream_key

from ..support import COMPLETION, HANG_GUARD, Generations, read_events, until, with_text

MANY = {"prompt": ["a", "b"], "n": 2}  # four generations


async def test_a_failing_choice_cancels_every_other_prompts_choices(client, monkeypatch):
    generations = Generations(count=4, fail=1)
    monkeypatch.setattr(client.app[upstream_key].client, "generate", generations.generate)
    async with asyncio.timeout(HANG_GUARD):
        resp = await client.post("/v1/completions", json=COMPLETION | MANY)
    assert resp.status == 502
    await until(lambda: len(generations.ended) == 3, timeout=1)
    assert sorted(generations.ended) == generations.others()


@pytest.mark.parametrize("fail", [0, 3])
async def test_a_choice_failing_mid_stream_cancels_every_other(client, monkeypatch, fail):
    generations = Generations(count=4, fail=fail)
    monkeypatch.setattr(client.app[upstream_key].client, "generate_stream", generations.generate_stream)
    async with asyncio.timeout(HANG_GUARD):
        resp = await client.post("/v1/completions", json=COMPLETION | MANY | {"stream": True})
        *chunks, error = await read_events(resp)
    assert len(with_text(chunks)) == 4
    assert error["error"]["message"] == f"Generation {fail} failed"
    assert sorted(generations.ended) == generations.others()
