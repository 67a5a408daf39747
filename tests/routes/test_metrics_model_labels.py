"""Model labels: only names the controller lists become labels; any other name a client sends
counts under one fixed label, so made-up names can neither multiply series nor crowd out the
models really served."""

from __future__ import annotations

from fastchat_api import metrics

from ..support import delta, scrape

ROUTE = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Hi"}]


async def test_made_up_models_share_one_label_and_served_ones_keep_theirs(client, fake):
    fake.models = ["really-served"]
    before = await scrape(client)
    for number in range(70):
        resp = await client.post(ROUTE, json={"model": f"made-up-{number}", "messages": MESSAGES})
        assert resp.status == 404
    resp = await client.post(ROUTE, json={"model": "really-served", "messages": MESSAGES})
    assert resp.status == 200
    after = await scrape(client)
    assert delta(before, after, "fastchat_api_requests_total",
                 route=ROUTE, model=metrics.UNKNOWN_MODEL, status="404") == 70
    assert delta(before, after, "fastchat_api_requests_total",
                 route=ROUTE, model="really-served", status="200") == 1
    assert delta(before, after, "fastchat_api_prompt_tokens_total",
                 model="really-served") == 10
    assert not any("made-up-" in value for _, labels in after for _, value in labels)
