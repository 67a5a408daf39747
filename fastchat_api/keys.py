"""API keys from the YAML, a key file and an environment variable, reloaded without a restart.

Keys are rotated by editing the key file: the auth middleware notices a new modification time
(looking at most once a second, a single ``stat``), and SIGHUP reloads at once. A file that
cannot be read during a reload leaves the keys in force, so that a botched rotation neither
locks every client out nor lets everyone in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import signal
import time
from pathlib import Path
from typing import AsyncIterator, Mapping

from aiohttp import web

from .config import AuthConfig, ConfigError
from .typedefs import keys_key

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0
Stamp = tuple[int, int, int] | None


def raw_bytes(text: str) -> bytes:
    """The bytes ``text`` was decoded from. HTTP headers (aiohttp) and environment variables
    (Python on POSIX) keep bytes that are not UTF-8 as lone surrogates (``surrogateescape``),
    which cannot be encoded plainly; this gives those bytes back, so that keys and tokens of any
    bytes compare and hash without an error."""
    return text.encode("utf-8", "surrogateescape")


def key_id(key: str) -> str:
    """What logs show instead of a key: stable across reloads and processes, and reveals nothing.

    An operator finds it with ``printf %s "$KEY" | sha256sum | cut -c1-8``.
    """
    return "key-" + hashlib.sha256(raw_bytes(key)).hexdigest()[:8]


def read_key_file(path: str) -> list[str]:
    """One key per line; ``#`` starts a comment, blank lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"auth.api_keys_file: cannot read {path}: {exc}") from None
    return [key for line in text.splitlines() if (key := line.split("#", 1)[0].strip())]


def _stamp(path: str) -> Stamp:
    """What changes when the file is edited or replaced (``mv`` of a new file keeps its mtime)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class KeyStore:
    """The keys in force and the paths they protect; held in the app under ``keys_key``.

    The check is on when any source of keys is configured, even if that source is empty for
    now: emptying the key file must not open the API.
    """

    def __init__(self, config: AuthConfig, environ: Mapping[str, str] = os.environ) -> None:
        self.file = config.api_keys_file
        self.enabled = bool(config.api_keys or self.file or config.api_keys_env)
        self.prefixes = ("/v1/", "/api/v1/") if config.protect_api_v1 else ("/v1/",)
        self._fixed = list(config.api_keys)
        if config.api_keys_env:
            value = environ.get(config.api_keys_env)
            if value is None:
                raise ConfigError(
                    f"auth.api_keys_env: the environment variable {config.api_keys_env} is not set"
                )
            self._fixed += [key.strip() for key in value.split(",") if key.strip()]
        self._stamp = _stamp(self.file) if self.file else None
        self._next_check = time.monotonic() + CHECK_INTERVAL
        self._keys = self._load()

    def _load(self) -> list[tuple[bytes, str]]:
        keys = self._fixed + (read_key_file(self.file) if self.file else [])
        return [(raw_bytes(key), key_id(key)) for key in dict.fromkeys(keys)]

    def reload(self) -> None:
        """Read the key file again; on failure keep the keys in force and say why."""
        self._stamp = _stamp(self.file) if self.file else None
        try:
            self._keys = self._load()
        except ConfigError as exc:
            log.error("%s; the %d keys in force are kept", exc, len(self._keys))
        else:
            log.info("API keys reloaded: %d keys", len(self._keys))

    def _refresh(self) -> None:
        """Reload when the key file changed; costs a clock read, and a ``stat`` once a second."""
        now = time.monotonic()
        if self.file is None or now < self._next_check:
            return
        self._next_check = now + CHECK_INTERVAL
        if _stamp(self.file) != self._stamp:
            self.reload()

    def identify(self, token: str) -> str | None:
        """The identity of the key ``token`` is, or None; its bytes, whatever they are, compared
        in constant time with every key's."""
        self._refresh()
        given = raw_bytes(token)
        found = None
        for key, identity in self._keys:
            if hmac.compare_digest(given, key):
                found = identity
        return found


async def reload_on_sighup(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: SIGHUP reloads the key file at once (``kill -HUP``, ``systemctl reload``).

    Under gunicorn the master's HUP starts new workers, which read the file afresh anyway.
    """
    store = app[keys_key]
    if store.file is None:
        yield
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, store.reload)
    yield
    loop.remove_signal_handler(signal.SIGHUP)
