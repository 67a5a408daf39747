"""API keys from the YAML, key files and an environment variable, reloaded without a restart.

A key is plain (any model, no limit) or carries attributes (``auth.keys`` and the YAML
``auth.keys_file``): a name, the models it may use, its limits, an expiry date (:class:`Key`).

Keys are rotated by editing a key file: the auth middleware notices a new modification time
(looking at most once a second, a single ``stat`` per file), and SIGHUP reloads at once. A file
that cannot be read or holds an invalid entry during a reload leaves the keys in force, so that
a botched rotation neither locks every client out nor lets everyone in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import signal
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Mapping

import yaml
from aiohttp import web
from marshmallow import ValidationError

from .config import KEY_SCHEMA, AuthConfig, ConfigError, KeyConfig, first_error
from .record import record_of
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


@dataclass(frozen=True, slots=True)
class Key:
    """A key as the gateway applies it; plain keys have no attribute set.

    ``id`` is what logs, metric labels and the limiter's counters name it by: its ``name``, or
    :func:`key_id` of the key. ``models`` are names or ``fnmatch`` glob patterns (``llama-*``),
    None for any model. ``rpm`` and ``tpm`` are requests and tokens (prompt + completion) per
    minute, ``max_parallel`` requests in flight (``limits`` applies them). The key works
    through the day ``expires`` (UTC) and is refused from the next.
    """

    id: str
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    expires: date | None = None

    @classmethod
    def of(cls, entry: KeyConfig) -> "Key":
        return cls(entry.name or key_id(entry.key), entry.models, entry.rpm, entry.tpm,
                   entry.max_parallel, entry.expires)

    @property
    def limited(self) -> bool:
        """Whether any limit applies to the key's requests."""
        return bool(self.rpm or self.tpm or self.max_parallel)

    def allows(self, model: str) -> bool:
        """Whether the key may use ``model`` (case-sensitive, as model names are)."""
        return self.models is None or any(fnmatchcase(model, pattern) for pattern in self.models)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the key is past its last day at ``now`` (aware; default: the clock's now)."""
        if self.expires is None:
            return False
        end = datetime(self.expires.year, self.expires.month, self.expires.day, tzinfo=timezone.utc)
        return (now or datetime.now(timezone.utc)) >= end + timedelta(days=1)


def model_access(request: web.Request) -> Callable[[str], bool] | None:
    """Which models the request's key may use (``Key.allows``); None: any."""
    key = record_of(request).key
    return None if key is None or key.models is None else key.allows


def read_key_file(path: str) -> list[str]:
    """One key per line; ``#`` starts a comment, blank lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"auth.api_keys_file: cannot read {path}: {exc}") from None
    return [key for line in text.splitlines() if (key := line.split("#", 1)[0].strip())]


def read_keys_yaml(path: str) -> list[KeyConfig]:
    """The YAML key file: a list of ``auth.keys`` entries (``- key: ...``, attributes beside).

    Raises ConfigError naming the file, the entry's place and the reason.
    """
    where = f"auth.keys_file: {path}"
    try:
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(f"{where}: expected a list of keys (- key: ...)")
    try:
        return list(KEY_SCHEMA.load(data, many=True))
    except ValidationError as exc:
        item, reason = first_error(exc.messages)
        raise ConfigError(f"{where}: {item}: {reason}") from None


def key_table(plain: Iterable[str], entries: Iterable[KeyConfig]) -> dict[str, Key]:
    """Every key by its text: plain keys (repeats are one), then keys with attributes.

    Raises ConfigError for a key or a name given twice with attributes (which would apply?).
    """
    table = {key: Key(key_id(key)) for key in plain}
    names: set[str] = set()
    for entry in entries:
        if entry.key in table:
            raise ConfigError(f"auth.keys: the key named {entry.name or key_id(entry.key)} "
                              "is given twice; give each key once")
        key = table[entry.key] = Key.of(entry)
        if key.id in names:
            raise ConfigError(f"auth.keys: the name {key.id} is given to two keys; names are unique")
        names.add(key.id)
    return table


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
        self.yaml_file = config.keys_file
        self.files = tuple(path for path in (self.file, self.yaml_file) if path)
        self._entries = config.keys
        self.enabled = bool(config.api_keys or config.keys or self.files or config.api_keys_env)
        self.prefixes = ("/v1/", "/api/v1/") if config.protect_api_v1 else ("/v1/",)
        self._fixed = list(config.api_keys)
        if config.api_keys_env:
            value = environ.get(config.api_keys_env)
            if value is None:
                raise ConfigError(
                    f"auth.api_keys_env: the environment variable {config.api_keys_env} is not set"
                )
            self._fixed += [key.strip() for key in value.split(",") if key.strip()]
        self._stamps = self._stamp_files()
        self._next_check = time.monotonic() + CHECK_INTERVAL
        self._keys = self._load()

    def _stamp_files(self) -> tuple[Stamp, ...]:
        return tuple(_stamp(path) for path in self.files)

    def _load(self) -> list[tuple[bytes, Key]]:
        plain = self._fixed + (read_key_file(self.file) if self.file else [])
        entries = [*self._entries, *(read_keys_yaml(self.yaml_file) if self.yaml_file else [])]
        return [(raw_bytes(text), key) for text, key in key_table(plain, entries).items()]

    def reload(self) -> None:
        """Read the key files again; on failure keep the keys in force and say why."""
        self._stamps = self._stamp_files()
        try:
            self._keys = self._load()
        except ConfigError as exc:
            log.error("%s; the %d keys in force are kept", exc, len(self._keys))
        else:
            log.info("API keys reloaded: %d keys", len(self._keys))

    def _refresh(self) -> None:
        """Reload when a key file changed; costs a clock read, and a ``stat`` a file a second."""
        now = time.monotonic()
        if not self.files or now < self._next_check:
            return
        self._next_check = now + CHECK_INTERVAL
        if self._stamp_files() != self._stamps:
            self.reload()

    def identify(self, token: str) -> Key | None:
        """The key ``token`` is, or None; its bytes, whatever they are, compared in constant
        time with every key's."""
        self._refresh()
        given = raw_bytes(token)
        found = None
        for key, identity in self._keys:
            if hmac.compare_digest(given, key):
                found = identity
        return found


async def reload_on_sighup(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: SIGHUP reloads the key files at once (``kill -HUP``, ``systemctl reload``).

    Under gunicorn the master's HUP starts new workers, which read the files afresh anyway.
    """
    store = app[keys_key]
    if not store.files:
        yield
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, store.reload)
    yield
    loop.remove_signal_handler(signal.SIGHUP)
