"""FastChat's rules: its range checks with their exact texts, and the stop-string merge."""

from __future__ import annotations

import pytest

from fastchat_api import errors, schemas
from fastchat_api.fastchat_rules import check_ranges, merge_stop

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def load_chat(**fields):
    return schemas.load(schemas.CHAT_COMPLETION, CHAT | fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_tokens": 0}, "0 is less than the minimum of 1 - 'max_tokens'"),
        ({"n": 0}, "0 is less than the minimum of 1 - 'n'"),
        ({"temperature": -1}, "-1.0 is less than the minimum of 0 - 'temperature'"),
        ({"temperature": 5}, "5.0 is greater than the maximum of 2 - 'temperature'"),
        ({"top_p": -0.5}, "-0.5 is less than the minimum of 0 - 'top_p'"),
        ({"top_p": 1.5}, "1.5 is greater than the maximum of 1 - 'top_p'"),
        ({"top_k": 0}, "0 is out of Range. Either set top_k to -1 or >=1."),
    ],
)
def test_fastchat_range_checks_keep_their_texts(fields, message):
    with pytest.raises(errors.APIError) as caught:
        check_ranges(load_chat(**fields))
    assert caught.value.message == message
    assert caught.value.fastchat_code == 40302
    assert caught.value.param == next(iter(fields))


def test_top_k_below_minus_one_passes_as_in_fastchat():
    check_ranges(load_chat(top_k=-5))


def test_stop_merge_keeps_order_and_drops_empties():
    assert merge_stop(["a", "b", ""], "a") == ["a", "b"]
    assert merge_stop("x", None) == ["x"]
    assert merge_stop(None, ["</s>"]) == ["</s>"]
    assert merge_stop(None, None) == []
