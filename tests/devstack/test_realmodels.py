"""devstack.realmodels: a prepared model is reused, and processes sharing the cache prepare
one at a time. (Preparing them for real is the real-model set's, tests/realmodels/.)"""

from __future__ import annotations

import fcntl
import json
import threading

import pytest

from devstack import realmodels


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    """A cache in which SmolLM2 is prepared; pip must not run."""
    target = tmp_path / realmodels.CHAT_MODEL
    target.mkdir()
    (target / realmodels._MARKER).write_text(json.dumps(
        {"recipe": realmodels._RECIPE_VERSION, "package": realmodels._CHAT_PACKAGE}))

    def no_pip(*args, **kwargs):
        raise AssertionError(f"pip ran: {args}")

    monkeypatch.setattr(realmodels.subprocess, "run", no_pip)
    return tmp_path


def test_a_prepared_model_is_reused(prepared):
    said = []
    assert realmodels.prepare_chat_model(prepared, said.append) == prepared / realmodels.CHAT_MODEL
    assert said == [f"model {realmodels.CHAT_MODEL}: prepared in {prepared / realmodels.CHAT_MODEL}"]


def test_a_model_of_another_recipe_is_prepared_again(prepared, tmp_path):
    marker = prepared / realmodels.CHAT_MODEL / realmodels._MARKER
    marker.write_text(json.dumps({"recipe": 0, "package": realmodels._CHAT_PACKAGE}))
    with pytest.raises(AssertionError, match="pip ran"):
        realmodels.prepare_chat_model(prepared, lambda _: None)


def test_waits_while_another_process_prepares(prepared):
    said, done = [], threading.Event()
    with open(prepared / f".{realmodels.CHAT_MODEL}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: (realmodels.prepare_chat_model(prepared, said.append),
                                                  done.set()))
        worker.start()
        assert not done.wait(1.0)
        assert said == [f"model {realmodels.CHAT_MODEL}: waiting for another process preparing it "
                        f"in {prepared}..."]
    worker.join(30)
    assert done.is_set()
    assert said[-1].endswith(f"prepared in {prepared / realmodels.CHAT_MODEL}")
