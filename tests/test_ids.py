"""Ids keep FastChat's format: prefix + 22 characters of shortuuid's alphabet, never repeated."""

from __future__ import annotations

import shortuuid

from fastchat_api.ids import new_id


def test_format_and_uniqueness():
    ids = {new_id("chatcmpl-") for _ in range(10000)}
    assert len(ids) == 10000
    alphabet = set(shortuuid.get_alphabet())
    assert all(i.startswith("chatcmpl-") and len(i) == 31 and set(i[9:]) <= alphabet for i in ids)
