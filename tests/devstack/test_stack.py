"""devstack.stack: FastChat's command lines, and a stack that notices a dying controller.

Starting the real controller and worker is covered by the integration tests that use it."""

from __future__ import annotations

import sys

import pytest

from devstack.processes import StackError
from devstack.stack import Stack, standin_command, worker_command


def test_worker_command_line():
    argv = worker_command("/m/tiny", port=2, controller_url="http://127.0.0.1:1",
                          model_name="tiny", python="py")
    assert argv == [
        "py", "-m", "fastchat.serve.model_worker", "--model-path", "/m/tiny",
        "--model-names", "tiny", "--host", "127.0.0.1", "--port", "2",
        "--worker-address", "http://127.0.0.1:2", "--controller-address", "http://127.0.0.1:1",
        "--device", "cpu", "--conv-template", "vicuna_v1.1",
    ]


def test_standin_command_line():
    assert standin_command(3, ["a:2:0.5", "b"], controller_url="http://127.0.0.1:1",
                           heartbeat=0, python="py") == [
        "py", "-m", "devstack.standin", "--host", "127.0.0.1", "--port", "3",
        "--model", "a:2:0.5", "--model", "b", "--controller", "http://127.0.0.1:1", "--heartbeat", "0",
    ]


def test_wait_for_models_fails_fast_when_controller_dies(tmp_path):
    with Stack(tmp_path) as stack:
        port = stack.free_port()
        stack.controller = stack.start_process(
            "controller", [sys.executable, "-c", "print('controller crashed', flush=True)"],
            url=f"http://127.0.0.1:{port}", port=port)
        stack.controller.popen.wait(timeout=30)
        with pytest.raises(StackError, match="controller crashed"):
            stack.wait_for_models(["tiny-llama"], timeout=30)
