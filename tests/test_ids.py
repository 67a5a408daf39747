"""Ids keep FastChat's format: prefix + 22 characters of shortuuid's alphabet, never repeated."""

from __future__ import annotations

import os

import shortuuid

from fastchat_api.ids import BATCH, new_id


def test_format_and_uniqueness():
    ids = {new_id("chatcmpl-") for _ in range(10000)}
    assert len(ids) == 10000
    alphabet = set(shortuuid.get_alphabet())
    assert all(i.startswith("chatcmpl-") and len(i) == 31 and set(i[9:]) <= alphabet for i in ids)


def test_batches_refill_without_repeats():
    """Ids drawn across several ``os.urandom`` batches stay distinct."""
    ids = [new_id("req-") for _ in range(3 * BATCH + 1)]
    assert len(set(ids)) == len(ids)


def test_forked_child_does_not_repeat_the_parents_ids():
    """A child forked mid-batch (gunicorn's workers) draws fresh bytes, not the parent's next."""
    new_id("req-")  # a batch is under way
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, " ".join(new_id("req-") for _ in range(4)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_id("req-") for _ in range(4)]
    assert child and len(child) == 4
    assert not set(child) & set(parent)
