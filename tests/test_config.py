"""Config: the shipped files load, bad files stop start-up with one line, flags override."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from marshmallow import fields

from fastchat_api.__main__ import overrides, parse_args
from fastchat_api.config import (
    CONFIG_SCHEMA, EMBEDDING_BATCH_ENV, Config, ConfigError, KeyConfig, ModelConfig, build_config,
    load_config,
)

from .support import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["prod.yaml", "dev.yaml"])
def test_shipped_configs_load(name):
    config = load_config(ROOT / "config" / name)
    assert config.controller.address.startswith("http://")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("controller:\n  adress: http://x\n", "controller.adress: Unknown field"),
        ("server:\n  port: eighty\n", "server.port: Not a valid integer"),
        ("server:\n  port: 70000\n", "server.port: Must be greater than or equal to 1"),
        ("upstream:\n  read_timeout: -1\n", "upstream.read_timeout: Must be greater than 0"),
        ("- a list\n", "(top level): expected a mapping of sections"),
        ("server: [\n", "(top level): not valid YAML"),
        ("logging:\n  level: LOUD\n", "logging.level: Must be one of"),
    ],
)
def test_bad_files_name_file_key_and_reason(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_missing_file_is_reported():
    with pytest.raises(ConfigError, match="nope.yaml: cannot read the file"):
        load_config("nope.yaml")


def test_empty_file_means_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == load_config(None)


def test_fastchat_flags_override_the_file():
    args = parse_args([
        "--config", str(ROOT / "config" / "prod.yaml"), "--host", "0.0.0.0", "--port", "9000",
        "--controller-address", "http://c:1", "--api-keys", "a, b,", "--allow-credentials",
        "--allowed-origins", '["http://x"]', "--allowed-methods", '["GET"]',
        "--allowed-headers", '["Authorization"]',
    ])
    config = load_config(args.config, overrides(args))
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    assert config.controller.address == "http://c:1"
    assert config.auth.api_keys == ("a", "b")
    assert config.cors.allow_credentials is True
    assert config.cors.allowed_origins == ("http://x",)
    assert config.cors.allowed_methods == ("GET",)
    assert config.cors.allowed_headers == ("Authorization",)
    assert config.upstream.read_timeout == 100  # untouched keys keep the file's values


def test_absent_flags_leave_the_file_alone():
    assert overrides(parse_args([])) == {}


def test_main_exits_non_zero_with_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  prot: 1\n")
    result = run_cli("--config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"fastchat_api: {path}: server.prot: Unknown field"


def test_ssl_without_key_files_is_a_config_error(monkeypatch):
    for name in [name for name in os.environ if name.startswith("SSL_")]:
        monkeypatch.delenv(name)
    result = run_cli("--ssl")
    assert result.returncode == 2
    assert "SSL_KEYFILE" in result.stderr


HINTS = {name: typing.get_type_hints(kind) for name, kind in typing.get_type_hints(Config).items()
         if dataclasses.is_dataclass(kind)}  # sections; ``models`` maps names to ModelConfig
SETTINGS = [f"{section}.{key}" for section, hints in HINTS.items() for key in hints]
MODEL_SETTINGS = list(typing.get_type_hints(ModelConfig))
# The marshmallow field each annotation must be checked with: the type is written on both sides
# of a setting's line, so this keeps the two from drifting apart.
FIELD_FOR_TYPE = {
    int: fields.Integer, float: fields.Float, bool: fields.Boolean, str: fields.String,
    str | None: fields.String, int | None: fields.Integer, tuple[str, ...]: fields.List,
    tuple[KeyConfig, ...]: fields.List, typing.Mapping[str, str]: fields.Dict,
}


@pytest.mark.parametrize(("section", "key"), [(s, k) for s, hints in HINTS.items() for k in hints])
def test_each_setting_is_checked_as_its_annotation_says(section, key):
    kind = HINTS[section][key]
    check = CONFIG_SCHEMA.fields[section].schema.fields[key]
    assert isinstance(check, FIELD_FOR_TYPE[kind])
    assert check.allow_none is (type(None) in typing.get_args(kind))
    if kind in (int, int | None):
        assert check.strict  # 1.5 or "8000" for a count or a port is an error, not truncated
    if kind == tuple[str, ...]:
        assert isinstance(check.inner, fields.String)
    if kind == tuple[KeyConfig, ...]:
        assert isinstance(check.inner, fields.Nested)


def test_every_default_passes_its_own_check():
    defaults = build_config()
    assert build_config(CONFIG_SCHEMA.dump(defaults)) == defaults


def test_lists_load_as_tuples_so_the_config_stays_frozen():
    config = build_config({"auth": {"api_keys": ["a", "b"]}, "cors": {"allowed_origins": ["http://x"]}})
    assert config.auth.api_keys == ("a", "b")
    assert config.cors.allowed_origins == ("http://x",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1


@pytest.mark.parametrize("value", ["8000", 8000.0, 80.5])
def test_integer_settings_are_strict(value):
    with pytest.raises(ConfigError, match=r"^config: server.port: Not a valid integer$"):
        build_config({"server": {"port": value}})


def test_a_file_error_wins_over_a_bad_environment_default(monkeypatch):
    monkeypatch.setenv(EMBEDDING_BATCH_ENV, "many")
    with pytest.raises(ConfigError, match=r"^config: server.prot: Unknown field$"):
        build_config({"server": {"prot": 1}})
    with pytest.raises(ConfigError, match=rf"^environment: {EMBEDDING_BATCH_ENV}: "):
        build_config({"server": {"port": 1}})


KEY_LINE = re.compile(r"  (?:# )?([a-z][a-z0-9_]*):(?: |$)")  # a key, set or commented out


def documented_keys(path: Path) -> list[tuple[str, bool]]:
    """Each ``section.key`` that a shipped file sets or shows commented out, and whether a
    comment of its own stands right above it (a commented-out key is not a comment)."""
    found, section, previous = [], None, ""
    for line in path.read_text().splitlines():
        if match := re.fullmatch(r"([a-z][a-z0-9_]*):\s*", line):
            section = match[1]
        elif match := KEY_LINE.match(line):
            explained = previous.startswith("  #") and not KEY_LINE.match(previous)
            found.append((f"{section}.{match[1]}", explained))
        previous = line
    return found


def test_prod_yaml_shows_every_setting_in_declaration_order():
    assert [key for key, _ in documented_keys(ROOT / "config" / "prod.yaml")] == SETTINGS


EXAMPLE_KEY = re.compile(r"  #\s+([a-z][a-z0-9_]*): \S.*")  # a key of a commented-out example
EXAMPLE_NOTE = re.compile(r"  #\s+# \S.*")  # a comment inside the example


def test_prod_yaml_shows_every_model_setting_in_its_example():
    """``models.<name>`` has no fixed keys to list: its commented example shows each, in
    declaration order, each with a comment of its own."""
    text = (ROOT / "config" / "prod.yaml").read_text()
    lines = text[text.index("\nmodels:\n"):].splitlines()
    keys = [(match[1], bool(EXAMPLE_NOTE.fullmatch(lines[i - 1])))
            for i, line in enumerate(lines) if (match := EXAMPLE_KEY.fullmatch(line))]
    assert keys == [(key, True) for key in MODEL_SETTINGS]
    assert load_config(ROOT / "config" / "prod.yaml").models == {}


@pytest.mark.parametrize("key", MODEL_SETTINGS)
def test_each_model_setting_is_checked_as_its_annotation_says(key):
    kind = typing.get_type_hints(ModelConfig)[key]
    check = CONFIG_SCHEMA.fields["models"].value_field.schema.fields[key]
    assert isinstance(check, FIELD_FOR_TYPE[kind])
    assert check.allow_none is (type(None) in typing.get_args(kind))


@pytest.mark.parametrize("name", ["prod.yaml", "dev.yaml"])
def test_shipped_configs_name_only_settings_each_with_a_comment(name):
    keys = documented_keys(ROOT / "config" / name)
    assert keys and {key for key, _ in keys} <= set(SETTINGS)
    assert [key for key, explained in keys if not explained] == []


def test_prod_yaml_values_are_the_defaults_but_where_its_comments_say():
    """prod.yaml's header promises that what it shows is the default unless a comment says."""
    shown, defaults = load_config(ROOT / "config" / "prod.yaml"), build_config()
    differing = {
        f"{section}.{key}" for section, hints in HINTS.items() for key in hints
        if getattr(getattr(shown, section), key) != getattr(getattr(defaults, section), key)
    }
    assert differing == {"server.host", "controller.address"}


def test_config_module_type_checks_strictly(tmp_path):
    """The settings' annotations are what the rest of the package relies on; keep them checked."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), "fastchat_api/config.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
