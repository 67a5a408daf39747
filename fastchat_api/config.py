"""Configuration: a YAML file checked by marshmallow schemas at start-up, then frozen.

A bad file must stop the process with one line naming the file, the key and the reason, so
that an operator never runs a gateway with a setting silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for the operator."""


EMBEDDING_BATCH_ENV = "FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE"


def _embedding_batch_size() -> int:
    """FastChat's environment variable (default 4) is the default of the config key."""
    value = os.environ.get(EMBEDDING_BATCH_ENV, "4")
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size <= 0:
        raise ConfigError(f"environment: {EMBEDDING_BATCH_ENV}: must be a positive integer, not {value!r}")
    return size


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "localhost"
    port: int = 8000
    ssl: bool = False
    client_max_size: int = 16 * 1024 * 1024
    shutdown_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    uvloop: bool = True


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    address: str = "http://localhost:21001"
    model_list_ttl: float = 1.0
    worker_address_ttl: float = 2.0
    refresh_interval: float = 0.5
    outage_grace: float = 60.0


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    connect_timeout: float = 5.0
    read_timeout: float = 100.0
    max_connections: int = 1000
    keepalive_timeout: float = 15.0
    worker_facts_ttl: float = 60.0
    skip_token_count: bool = True
    max_frame_size: int = 16 * 1024 * 1024
    embedding_batch_size: int = field(default_factory=_embedding_batch_size)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    api_keys: tuple[str, ...] = ()
    api_keys_file: str | None = None
    api_keys_env: str | None = None
    protect_api_v1: bool = True


@dataclass(frozen=True, slots=True)
class CorsConfig:
    allow_credentials: bool = False
    allowed_origins: tuple[str, ...] = ("*",)
    allowed_methods: tuple[str, ...] = ("*",)
    allowed_headers: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "INFO"
    access_format: str = "json"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    cors: CorsConfig = field(default_factory=CorsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


_POSITIVE = validate.Range(min=0, min_inclusive=False)
_PORT = validate.Range(min=1, max=65535)
_ENV_NAME = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*$", error="Not an environment variable name.")


class _Switch(fields.String):
    """A string where YAML's bare ``off`` (which YAML reads as false) means ``"off"``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize("off" if value is False else value, attr, data, **kwargs)


class _Section(Schema):
    """A section of the file: unknown keys are errors, loads into its dataclass."""

    target: type

    class Meta:
        unknown = RAISE

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.target(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class ServerSchema(_Section):
    target = ServerConfig
    host = fields.String(validate=validate.Length(min=1))
    port = fields.Integer(strict=True, validate=_PORT)
    ssl = fields.Boolean()
    client_max_size = fields.Integer(strict=True, validate=_POSITIVE)
    shutdown_timeout = fields.Float(validate=validate.Range(min=0))
    keepalive_timeout = fields.Float(validate=_POSITIVE)
    uvloop = fields.Boolean()


class ControllerSchema(_Section):
    target = ControllerConfig
    address = fields.Url(require_tld=False, schemes={"http", "https"})
    model_list_ttl = fields.Float(validate=validate.Range(min=0))
    worker_address_ttl = fields.Float(validate=validate.Range(min=0))
    refresh_interval = fields.Float(validate=validate.Range(min=0))
    outage_grace = fields.Float(validate=validate.Range(min=0))


class UpstreamSchema(_Section):
    target = UpstreamConfig
    connect_timeout = fields.Float(validate=_POSITIVE)
    read_timeout = fields.Float(validate=_POSITIVE)
    max_connections = fields.Integer(strict=True, validate=validate.Range(min=0))
    keepalive_timeout = fields.Float(validate=_POSITIVE)
    worker_facts_ttl = fields.Float(validate=validate.Range(min=0))
    skip_token_count = fields.Boolean()
    max_frame_size = fields.Integer(strict=True, validate=_POSITIVE)
    embedding_batch_size = fields.Integer(strict=True, validate=_POSITIVE)


class AuthSchema(_Section):
    target = AuthConfig
    api_keys = fields.List(fields.String(validate=validate.Length(min=1)))
    api_keys_file = fields.String(allow_none=True, validate=validate.Length(min=1))
    api_keys_env = fields.String(allow_none=True, validate=_ENV_NAME)
    protect_api_v1 = fields.Boolean()


class CorsSchema(_Section):
    target = CorsConfig
    allow_credentials = fields.Boolean()
    allowed_origins = fields.List(fields.String())
    allowed_methods = fields.List(fields.String())
    allowed_headers = fields.List(fields.String())


class LoggingSchema(_Section):
    target = LoggingConfig
    level = fields.String(validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]))
    access_format = _Switch(validate=validate.OneOf(["json", "logfmt", "off"]))


class MetricsSchema(_Section):
    target = MetricsConfig
    token = fields.String(allow_none=True, validate=validate.Length(min=1))


class ConfigSchema(_Section):
    target = Config
    server = fields.Nested(ServerSchema)
    controller = fields.Nested(ControllerSchema)
    upstream = fields.Nested(UpstreamSchema)
    auth = fields.Nested(AuthSchema)
    cors = fields.Nested(CorsSchema)
    logging = fields.Nested(LoggingSchema)
    metrics = fields.Nested(MetricsSchema)


CONFIG_SCHEMA = ConfigSchema()


def _first_error(errors: Any, path: str = "") -> tuple[str, str]:
    """The dotted key and reason of the first error marshmallow reported."""
    if isinstance(errors, dict):
        key, value = next(iter(errors.items()))
        if key == "_schema":
            return _first_error(value, path)
        return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(errors, list) and errors:
        return _first_error(errors[0], path)
    return path or "(top level)", str(errors).rstrip(".")


def _merge(base: dict[str, Any], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    merged = dict(base)
    for section, values in overrides.items():
        current = merged.get(section)
        merged[section] = {**(current if isinstance(current, dict) else {}), **values}
    return merged


def build_config(
    data: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    source: str = "config",
) -> Config:
    """Validate a mapping (as read from YAML) with optional per-section overrides."""
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{source}: (top level): expected a mapping of sections")
    merged = _merge(dict(data or {}), overrides or {})
    try:
        return CONFIG_SCHEMA.load(merged)
    except ValidationError as exc:
        key, reason = _first_error(exc.messages)
        raise ConfigError(f"{source}: {key}: {reason}") from None


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """Read and validate the YAML file at ``path`` (defaults only when ``path`` is None)."""
    if path is None:
        return build_config(None, overrides, "defaults")
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{source}: (top level): not valid YAML: {reason}") from None
    return build_config(data, overrides, source)


def replace(config: Config, **sections: Mapping[str, Any]) -> Config:
    """A copy of ``config`` with some fields of some sections changed (used by tests)."""
    changed = {
        name: dataclasses.replace(getattr(config, name), **values) for name, values in sections.items()
    }
    return dataclasses.replace(config, **changed)
