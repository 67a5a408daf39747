"""bench.tools: what is missing is named with the command that installs it, and nothing runs."""

from __future__ import annotations

import pytest

from bench import tools


def test_missing_tools_are_named_with_their_install_command_and_the_run_stops(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    venv = tmp_path / "fastchat venv"
    with pytest.raises(SystemExit) as exit_info:
        tools.check(venv, docs=False, gunicorn=False, profile=True)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "apt-get install -y wrk" in err
    assert f"-m devstack.fastchat_venv '{venv}'" in err
    assert "pip install py-spy" in err or tools._pyspy()
    assert not venv.exists()  # nothing was created


def test_with_everything_there_the_tools_are_returned(tmp_path, monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(tools.fastchat_venv, "works", lambda python: True)
    found = tools.check(tmp_path, docs=False, gunicorn=True, profile=False)
    assert found == tools.Tools(wrk="/usr/bin/wrk", fastchat_python=tmp_path / "bin" / "python",
                                pyspy=None)
