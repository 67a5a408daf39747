"""Completion streams with ``logprobs`` on FastChat's real worker and the tiny random Llama,
whose byte-level tokens often hold half a character: each chunk carries exactly the tokens its
text completes, offsets index the text sent, and the chunks add up to the answer not streamed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

R = "\ufffd"
# The request, and two that end a worker frame inside a character on this model.
REQUESTS = [("Once", 6), ("Привет", 6), ("Hello", 16)]


@pytest.mark.parametrize(("prompt", "max_tokens"), REQUESTS)
def test_stream_chunks_carry_the_tokens_of_their_text(openai_client, model_name, prompt, max_tokens):
    request = {"model": model_name, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
               "logprobs": 1}
    whole = openai_client.completions.create(**request).choices[0]
    sent, tokens, logprobs, offsets = "", [], [], []
    for chunk in openai_client.completions.create(**request, stream=True):
        (choice,) = chunk.choices
        part = choice.logprobs
        if part.tokens:
            assert part.text_offset[0] == len(sent), (sent, choice)  # its tokens begin its text
        sent += choice.text
        for token, offset in zip(part.tokens, part.text_offset):
            assert offset <= len(sent), (sent, choice)
            if R not in token:  # a whole token sits in the text sent, where its offset says
                assert whole.text[offset : offset + len(token)] == token, (sent, choice)
                assert offset + len(token) <= len(sent), (sent, choice)
        if R not in choice.text + "".join(part.tokens):  # no character split across tokens
            assert "".join(part.tokens) == choice.text
        tokens += part.tokens
        logprobs += part.token_logprobs
        offsets += part.text_offset
    assert sent == whole.text
    assert tokens == whole.logprobs.tokens
    assert logprobs == whole.logprobs.token_logprobs
    assert offsets == whole.logprobs.text_offset
