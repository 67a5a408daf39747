"""Operations: the config keys of keys, logs and metrics; the systemd unit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fastchat_api.config import ConfigError, build_config, load_config


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


ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "scripts" / "fastchat-api.service"


def test_systemd_waits_longer_than_gunicorn_drains_streams():
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", UNIT.read_text(), re.MULTILINE)[1])
    graceful = load_config(ROOT / "config" / "prod.yaml").server.shutdown_timeout + 5
    assert stop > graceful


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path):
    """``systemd-analyze verify`` with the install paths pointed at this checkout."""
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text()
        .replace("/opt/fastchat-api/venv/bin/gunicorn", str(Path(sys.executable).with_name("gunicorn")))
        .replace("/opt/fastchat-api", str(ROOT))
    )
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
