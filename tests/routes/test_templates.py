"""Templates through HTTP: a worker stand-in serving each of FastChat's registered templates
records the prompt our server sends, which must equal FastChat's own rendering."""

from __future__ import annotations

import dataclasses

import pytest

conversation = pytest.importorskip("fastchat.conversation")

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "Déjà vu?\nTwo lines."},
]


def worker_dict(template) -> dict:
    """The ``conv`` a 0.2.36 worker sends: the dataclass's fields, ``sep_style`` as an int."""
    conv = dataclasses.asdict(template)
    conv["sep_style"] = int(template.sep_style)
    return conv


def fastchat_prompt(template) -> str:
    conv = template.copy()
    for message in MESSAGES:
        if message["role"] == "system":
            conv.set_system_message(message["content"])
        else:
            role = conv.roles[0] if message["role"] == "user" else conv.roles[1]
            conv.append_message(role, message["content"])
    conv.append_message(conv.roles[1], None)
    return conv.get_prompt()


RENDERABLE = sorted(
    name for name, template in conversation.conv_templates.items() if template.sep_style is not None
)


@pytest.mark.parametrize("name", RENDERABLE)
async def test_the_worker_receives_fastchats_prompt(client, fake, name):
    template = conversation.get_conv_template(name)
    fake.conv = worker_dict(template)
    resp = await client.post("/v1/chat/completions", json={
        "model": "fake-model", "messages": MESSAGES, "max_tokens": 8})
    assert resp.status == 200, await resp.text()
    (params,) = fake.sent("/worker_generate")
    assert params["prompt"] == fastchat_prompt(template)
    assert params["stop_token_ids"] == template.stop_token_ids


async def test_an_undecodable_template_is_a_500_the_client_does_not_retry(client, fake):
    fake.conv = {**fake.conv, "name": "mystery", "sep_style": 99}
    resp = await client.post("/v1/chat/completions", json={
        "model": "fake-model", "messages": MESSAGES})
    assert resp.status == 500
    assert resp.headers["x-should-retry"] == "false"
    body = await resp.json()
    assert body["error"]["code"] == "unsupported_template"
    assert "mystery" in body["error"]["message"] and fake.address not in body["error"]["message"]
