"""README.rst is the user's manual: it must render (a malformed table shows as raw markup on
PyPI and in editors, hiding the settings it lists)."""

from pathlib import Path

import docutils.core
import docutils.utils

ROOT = Path(__file__).resolve().parents[1]


def test_readme_renders_without_warnings():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    try:
        docutils.core.publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 2})
    except docutils.utils.SystemMessage as exc:
        raise AssertionError(f"README.rst: {exc}") from None
