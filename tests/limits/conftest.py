"""A real ``redis-server`` (Debian's package) on a free loopback port, for the tests of the
limits' Redis storage; started with devstack's process helpers and stopped after the test."""

from __future__ import annotations

import pytest

from devstack.stack import Stack


@pytest.fixture
def redis_stack(tmp_path):
    """A stack holding one running ``redis-server``: ``stack.processes[0]``."""
    with Stack(tmp_path / "redis") as stack:
        stack.start_redis()
        yield stack


@pytest.fixture
def redis_url(redis_stack) -> str:
    url = redis_stack.processes[0].url
    assert url is not None
    return url
