"""Operations: the config keys of keys, logs and metrics."""

from __future__ import annotations

import pytest

from fastchat_api.config import ConfigError, build_config


def test_operations_keys_load_and_yaml_off_means_off():
    config = build_config({
        "auth": {"api_keys_file": "/etc/keys", "api_keys_env": "MY_KEYS"},
        "logging": {"access_format": False},  # what YAML makes of a bare `off`
        "metrics": {"token": "scrape"},
    })
    assert config.auth.api_keys_file == "/etc/keys" and config.auth.api_keys_env == "MY_KEYS"
    assert config.logging.access_format == "off"
    assert config.metrics.token == "scrape"


@pytest.mark.parametrize(("sections", "expected"), [
    ({"logging": {"access_format": "xml"}}, "logging.access_format: Must be one of"),
    ({"auth": {"api_keys_env": "MY-KEYS"}}, "auth.api_keys_env: Not an environment variable name"),
    ({"metrics": {"token": ""}}, "metrics.token: Shorter than minimum length"),
    ({"metrics": {"tokn": "x"}}, "metrics.tokn: Unknown field"),
])
def test_bad_operations_keys_are_refused(sections, expected):
    with pytest.raises(ConfigError, match=expected):
        build_config(sections)
