"""Configuration: a YAML file checked by marshmallow schemas at start-up, then frozen.

A bad file must stop the process with one line naming the file, the key and the reason, so
that an operator never runs a gateway with a setting silently ignored.

Each setting is declared once: a dataclass field carries its default and the marshmallow field
that checks it (type and validators), and each section's schema is derived from its dataclass.
No library does the deriving: marshmallow-dataclass 8.7.1 and its fork marshmallow-dataclass2
were last released before marshmallow 4 and pass field metadata on as keyword arguments, which
marshmallow 4 refuses for anything but a field's own options; they also call the environment's
default for ``embedding_batch_size`` (an environment variable) before the file's own errors are reported. desert cannot
read ``str | None``. The derivation below is a few lines and keeps the very marshmallow fields
the file was always checked with.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, TypeVar, cast

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for the operator."""


EMBEDDING_BATCH_ENV = "FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE"
WORKER_TIMEOUT_ENV = "FASTCHAT_WORKER_API_TIMEOUT"


_POSITIVE = validate.Range(min=0, min_inclusive=False)
_NON_NEGATIVE = validate.Range(min=0)
_PORT = validate.Range(min=1, max=65535)
_NOT_EMPTY = validate.Length(min=1)
_ENV_NAME = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*$", error="Not an environment variable name.")
# A header value that every HTTP writer and reader takes: visible ASCII, single inner spaces.
_HEADER_VALUE = validate.Regexp(r"^[!-~]+( [!-~]+)*$",
                                error="Not a header value: visible ASCII words and single spaces.")
_FIELD = "marshmallow_field"
T = TypeVar("T")


class _Switch(fields.String):
    """A string where YAML's bare ``off`` (which YAML reads as false) means ``"off"``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize("off" if value is False else value, attr, data, **kwargs)


def _strict_int(check: validate.Validator) -> fields.Integer:
    """An integer key: ``strict`` so that 1.5 or "8000" is an error, never truncated or parsed."""
    return fields.Integer(strict=True, validate=check)


def _optional_int(check: validate.Validator) -> fields.Integer:
    """A strict integer key that may be left unset (null: no such limit)."""
    return fields.Integer(strict=True, allow_none=True, validate=check)


def _setting(default: T, check: fields.Field[Any]) -> T:
    """A config key declared once: its default and the marshmallow field that checks the file
    (a mapping's default is copied into a read-only view for every config)."""
    if isinstance(default, dict):
        return field(default_factory=lambda: cast(T, MappingProxyType(dict(default))),
                     metadata={_FIELD: check})
    return field(default=default, metadata={_FIELD: check})


def _section(config: type[T]) -> T:
    """A section of the file: a nested dataclass whose schema is derived from its settings."""
    return field(default_factory=config, metadata={_FIELD: fields.Nested(_schema_of(config))})


def _from_environment(
    name: str, fastchat_default: str, parse: Callable[[str], T], check: fields.Field[Any], must_be: str
) -> T:
    """A config key whose default is FastChat's environment variable ``name`` (``fastchat_default``
    when it is unset), read when a config is built, not at import, and only when the file does
    not set the key; the value must pass the key's own ``check``.

    Raises ConfigError ("environment: NAME: must be ..., not 'value'") for a value that does not.
    A bad variable is reported only after the file's own errors (the section's schema runs first).
    """

    def read() -> T:
        value = os.environ.get(name, fastchat_default)
        try:
            return cast(T, check.deserialize(parse(value)))
        except (ValueError, ValidationError):
            raise ConfigError(f"environment: {name}: must be {must_be}, not {value!r}") from None

    return field(default_factory=read, metadata={_FIELD: check})


class _Section(Schema):
    """A section's schema: unknown keys are errors, and it loads into the section's dataclass.

    Lists become tuples and mappings read-only, so that the loaded config is immutable all the
    way down.
    """

    config: type[Any]

    class Meta:
        unknown = RAISE

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.config(**{k: _frozen(v) for k, v in data.items()})


def _frozen(value: Any) -> Any:
    """Lists as tuples, mappings as read-only views."""
    if isinstance(value, list):
        return tuple(value)
    return MappingProxyType(value) if isinstance(value, dict) else value


def _schema_of(config: type[Any]) -> type[_Section]:
    """The schema class of a settings dataclass: one field per setting, in declaration order."""
    declared = {item.name: item.metadata[_FIELD] for item in dataclasses.fields(config)}
    return type(f"{config.__name__}Schema", (_Section,), {"config": config, **declared})


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = _setting("localhost", fields.String(validate=_NOT_EMPTY))
    port: int = _setting(8000, _strict_int(_PORT))
    ssl: bool = _setting(False, fields.Boolean())
    client_max_size: int = _setting(16 * 1024 * 1024, _strict_int(_POSITIVE))
    max_body_memory: int = _setting(256 * 1024 * 1024, _strict_int(_POSITIVE))
    body_read_timeout: float = _setting(30.0, fields.Float(validate=_POSITIVE))
    shutdown_timeout: float = _setting(60.0, fields.Float(validate=_NON_NEGATIVE))
    keepalive_timeout: float = _setting(75.0, fields.Float(validate=_POSITIVE))
    uvloop: bool = _setting(True, fields.Boolean())
    server_header: str = _setting("fastchat_api", fields.String(validate=_HEADER_VALUE))

    def __post_init__(self) -> None:
        if self.max_body_memory < self.client_max_size:  # one largest body must fit
            raise ValidationError("Must be at least server.client_max_size.", "max_body_memory")


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    address: str = _setting(
        "http://localhost:21001", fields.Url(require_tld=False, schemes={"http", "https"})
    )
    model_list_ttl: float = _setting(1.0, fields.Float(validate=_NON_NEGATIVE))
    worker_address_ttl: float = _setting(2.0, fields.Float(validate=_NON_NEGATIVE))
    refresh_interval: float = _setting(0.5, fields.Float(validate=_NON_NEGATIVE))
    outage_grace: float = _setting(60.0, fields.Float(validate=_NON_NEGATIVE))


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    connect_timeout: float = _setting(5.0, fields.Float(validate=_POSITIVE))
    read_timeout: float = _from_environment(
        WORKER_TIMEOUT_ENV, "100", float, fields.Float(validate=_POSITIVE), "a positive number of seconds"
    )
    max_connections: int = _setting(1000, _strict_int(_NON_NEGATIVE))
    keepalive_timeout: float = _setting(15.0, fields.Float(validate=_POSITIVE))
    worker_facts_ttl: float = _setting(60.0, fields.Float(validate=_NON_NEGATIVE))
    skip_token_count: bool = _setting(True, fields.Boolean())
    max_frame_size: int = _setting(16 * 1024 * 1024, _strict_int(_POSITIVE))
    embedding_batch_size: int = _from_environment(
        EMBEDDING_BATCH_ENV, "4", int, _strict_int(_POSITIVE), "a positive integer"
    )
    expose_addresses: bool = _setting(False, fields.Boolean())


# A key's name: shown in logs and metric labels, and part of the limiter's storage keys.
_KEY_NAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._@/+-]{0,63}$",
                            error="Not a key name: up to 64 letters, digits and . _ @ / + -, "
                                  "starting with a letter or digit.")


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """One entry of ``auth.keys`` or of the ``auth.keys_file``: a key and what it may do
    (``keys.Key`` says how each attribute is applied). Unset limits are no limits."""

    key: str = _setting("", fields.String(required=True, validate=_NOT_EMPTY))
    name: str | None = _setting(None, fields.String(allow_none=True, validate=_KEY_NAME))
    models: tuple[str, ...] | None = _setting(
        None, fields.List(fields.String(validate=_NOT_EMPTY), allow_none=True)
    )
    rpm: int | None = _setting(None, _optional_int(_POSITIVE))
    tpm: int | None = _setting(None, _optional_int(_POSITIVE))
    max_parallel: int | None = _setting(None, _optional_int(_POSITIVE))
    expires: date | None = _setting(None, fields.Date(allow_none=True))


KEY_SCHEMA = _schema_of(KeyConfig)()


@dataclass(frozen=True, slots=True)
class AuthConfig:
    api_keys: tuple[str, ...] = _setting((), fields.List(fields.String(validate=_NOT_EMPTY)))
    keys: tuple[KeyConfig, ...] = _setting((), fields.List(fields.Nested(KEY_SCHEMA)))
    keys_file: str | None = _setting(None, fields.String(allow_none=True, validate=_NOT_EMPTY))
    api_keys_file: str | None = _setting(None, fields.String(allow_none=True, validate=_NOT_EMPTY))
    api_keys_env: str | None = _setting(None, fields.String(allow_none=True, validate=_ENV_NAME))
    protect_api_v1: bool = _setting(True, fields.Boolean())


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    redis_url: str | None = _setting(None, fields.String(
        allow_none=True, validate=validate.Regexp(r"^(redis|rediss|unix)://",
                                                  error="Not a redis://, rediss:// or unix:// URL.")))
    redis_timeout: float = _setting(0.25, fields.Float(validate=_POSITIVE))
    on_redis_error: str = _setting("serve", fields.String(validate=validate.OneOf(["serve", "refuse"])))
    slot_timeout: float = _setting(900.0, fields.Float(validate=_POSITIVE))
    model_max_parallel: int | None = _setting(None, _optional_int(_POSITIVE))


@dataclass(frozen=True, slots=True)
class CorsConfig:
    allow_credentials: bool = _setting(False, fields.Boolean())
    allowed_origins: tuple[str, ...] = _setting(("*",), fields.List(fields.String()))
    allowed_methods: tuple[str, ...] = _setting(("*",), fields.List(fields.String()))
    allowed_headers: tuple[str, ...] = _setting(("*",), fields.List(fields.String()))


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = _setting(
        "INFO", fields.String(validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]))
    )
    access_format: str = _setting("json", _Switch(validate=validate.OneOf(["json", "logfmt", "off"])))


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    token: str | None = _setting(None, fields.String(allow_none=True, validate=_NOT_EMPTY))


@dataclass(frozen=True, slots=True)
class CompatConfig:
    strict: bool = _setting(False, fields.Boolean())


DEFAULT_INSTRUCTION = (
    "Answer with one JSON value and nothing else (no text before or after it, no code "
    "fences). It must be valid against this JSON Schema:\n{schema}"
)


@dataclass(frozen=True, slots=True)
class StructuredConfig:
    max_attempts: int = _setting(3, _strict_int(validate.Range(min=1, max=10)))
    instruction: str = _setting(DEFAULT_INSTRUCTION, fields.String(validate=_NOT_EMPTY))
    model_instructions: Mapping[str, str] = _setting(
        cast(Mapping[str, str], {}), fields.Dict(keys=fields.String(validate=_NOT_EMPTY),
                                          values=fields.String(validate=_NOT_EMPTY)))


TOOL_FORMATS = ("hermes", "llama3_json", "mistral", "json", "none")


@dataclass(frozen=True, slots=True)
class ToolsConfig:
    max_attempts: int = _setting(3, _strict_int(validate.Range(min=1, max=10)))
    instructions: Mapping[str, str] = _setting(
        cast(Mapping[str, str], {}), fields.Dict(keys=fields.String(validate=validate.OneOf(TOOL_FORMATS[:-1])),
                                          values=fields.String(validate=_NOT_EMPTY)))


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One model's own settings, under ``models.<name>`` (the name its workers register)."""

    tool_format: str | None = _setting(None, fields.String(allow_none=True,
                                                           validate=validate.OneOf(TOOL_FORMATS)))
    tool_instruction: str | None = _setting(None, fields.String(allow_none=True, validate=_NOT_EMPTY))


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = _section(ServerConfig)
    controller: ControllerConfig = _section(ControllerConfig)
    upstream: UpstreamConfig = _section(UpstreamConfig)
    auth: AuthConfig = _section(AuthConfig)
    limits: LimitsConfig = _section(LimitsConfig)
    cors: CorsConfig = _section(CorsConfig)
    logging: LoggingConfig = _section(LoggingConfig)
    metrics: MetricsConfig = _section(MetricsConfig)
    compat: CompatConfig = _section(CompatConfig)
    structured: StructuredConfig = _section(StructuredConfig)
    tools: ToolsConfig = _section(ToolsConfig)
    models: Mapping[str, ModelConfig] = _setting(
        cast(Mapping[str, ModelConfig], {}),
        fields.Dict(keys=fields.String(validate=_NOT_EMPTY), values=fields.Nested(_schema_of(ModelConfig))))


CONFIG_SCHEMA = _schema_of(Config)()


def first_error(errors: Any, path: str = "") -> tuple[str, str]:
    """The dotted key and reason of the first error marshmallow reported."""
    if isinstance(errors, dict):
        key, value = next(iter(errors.items()))
        if key == "_schema":
            return first_error(value, path)
        return first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(errors, list) and errors:
        return first_error(errors[0], path)
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
        config: Config = CONFIG_SCHEMA.load(merged)
    except ValidationError as exc:
        key, reason = first_error(exc.messages)
        raise ConfigError(f"{source}: {key}: {reason}") from None
    return config


def _read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{path}: (top level): not valid YAML: {reason}") from None


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """Read and validate the YAML file at ``path`` (defaults only when ``path`` is None), then
    apply ``overrides`` (the command line's flags).

    The file is checked on its own first, so that a flag never hides a bad value of the same
    key in the file (the operator would find it the day the flag is dropped); an error in an
    override is reported as the command line's.
    """
    data, source = (None, "defaults") if path is None else (_read_yaml(path), str(path))
    config = build_config(data, None, source)
    return build_config(data, overrides, "command line") if overrides else config

