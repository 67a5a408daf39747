"""fastchat_api.devstack: the tiny random Llama and the child-process manager.

Starting the real FastChat controller and worker is covered by the integration tests that
use these helpers; here the model build is checked by loading it with transformers, and
the process manager with stdlib-only children.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

import pytest

from fastchat_api import devstack
from fastchat_api.devstack import Stack, StackError, build_tiny_llama, worker_command


@pytest.mark.integration
def test_tiny_llama_builds_and_loads(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    path = build_tiny_llama(tmp_path, "tiny-llama")
    assert path == tmp_path / "tiny-llama"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (path / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name != "tiny-llama"], "temporary dirs left"

    config = transformers.AutoConfig.from_pretrained(path)
    assert config.model_type == "llama"
    assert config.num_hidden_layers == 2
    assert config.hidden_size == 64
    assert config.num_attention_heads == 4
    assert config.max_position_embeddings == 2048  # FastChat's worker reads its context length here

    tok = transformers.AutoTokenizer.from_pretrained(path)
    assert tok.is_fast
    assert (tok.unk_token, tok.bos_token, tok.eos_token) == ("<unk>", "<s>", "</s>")
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert 900 <= len(tok) <= 1000
    assert len(tok) == config.vocab_size
    text = "USER: Hello world! ASSISTANT: héllo 🙂"
    ids = tok(text).input_ids
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1  # <s> prepended like Llama
    assert tok.decode(ids, skip_special_tokens=True) == text  # byte-level: lossless round trip

    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits
    assert tuple(logits.shape) == (1, len(ids), config.vocab_size)

    # Idempotent: a second call reuses the build without touching it.
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert build_tiny_llama(tmp_path, "tiny-llama") == path
    assert time.monotonic() - started < 1.0
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime

    # Deterministic weights: another build gives the same bytes.
    again = build_tiny_llama(tmp_path / "again", "tiny-llama")
    assert (again / "model.safetensors").read_bytes() == (path / "model.safetensors").read_bytes()
    assert (again / "tokenizer.json").read_bytes() == (path / "tokenizer.json").read_bytes()


def test_incomplete_build_is_rebuilt_check(tmp_path):
    spec = devstack._model_spec("m")
    (tmp_path / "m").mkdir()
    assert not devstack._is_built(tmp_path / "m", spec)
    (tmp_path / "m" / devstack._MARKER).write_text(json.dumps({"spec": {**spec, "recipe": -1}}))
    assert not devstack._is_built(tmp_path / "m", spec)
    (tmp_path / "m" / devstack._MARKER).write_text(json.dumps({"spec": spec}))
    assert devstack._is_built(tmp_path / "m", spec)


def test_worker_command_line():
    argv = worker_command("/m/tiny", port=2, controller_url="http://127.0.0.1:1",
                          model_name="tiny", python="py")
    assert argv == [
        "py", "-m", "fastchat.serve.model_worker", "--model-path", "/m/tiny",
        "--model-names", "tiny", "--host", "127.0.0.1", "--port", "2",
        "--worker-address", "http://127.0.0.1:2", "--controller-address", "http://127.0.0.1:1",
        "--device", "cpu", "--conv-template", "vicuna_v1.1",
    ]


def _http_server_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def test_stack_starts_waits_and_stops(tmp_path):
    with Stack(tmp_path) as stack:
        port = stack.free_port()
        url = f"http://127.0.0.1:{port}"
        proc = stack.start_process("web", _http_server_argv(port), ready=url + "/", timeout=30,
                                   port=port, url=url)
        assert proc.alive() and proc.ready_seconds is not None
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            assert resp.status == 200
        assert proc.log_path == tmp_path / "logs" / "web.log"
        # A child that ignores SIGTERM is killed after the grace period.
        stubborn = stack.start_process("stubborn", [
            sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ignoring' + ' SIGTERM', flush=True); time.sleep(60)",
        ], ready=lambda: "ignoring SIGTERM" in (tmp_path / "logs" / "stubborn.log").read_text(),
           timeout=30)
        stack.close(grace=1.0)
    assert proc.returncode is not None
    assert stubborn.returncode == -9
    with pytest.raises(StackError, match="closed"):
        stack.start_process("late", ["true"])


def test_stack_reports_log_tail_when_child_dies(tmp_path):
    with Stack(tmp_path) as stack:
        argv = [sys.executable, "-c", "import sys; print('boom: bad flag', flush=True); sys.exit(3)"]
        with pytest.raises(StackError) as info:
            stack.start_process("dies", argv, ready=lambda: False, timeout=30)
    message = str(info.value)
    assert "exited with code 3" in message
    assert "boom: bad flag" in message


def test_stack_reports_log_tail_when_not_ready_in_time(tmp_path):
    with Stack(tmp_path) as stack:
        argv = [sys.executable, "-c", "import time; print('still loading', flush=True); time.sleep(60)"]
        started = time.monotonic()
        with pytest.raises(StackError) as info:
            stack.start_process("slow", argv, ready=lambda: False, timeout=1.5)
        assert time.monotonic() - started < 15
        assert not stack.processes[0].alive()  # a failed start is stopped at once
    assert "not ready after" in str(info.value)
    assert "still loading" in str(info.value)


def test_wait_for_models_fails_fast_when_controller_dies(tmp_path):
    with Stack(tmp_path) as stack:
        port = stack.free_port()
        stack.controller = stack.start_process(
            "controller", [sys.executable, "-c", "print('controller crashed', flush=True)"],
            url=f"http://127.0.0.1:{port}", port=port)
        stack.controller.popen.wait(timeout=30)
        with pytest.raises(StackError, match="controller crashed"):
            stack.wait_for_models(["tiny-llama"], timeout=30)
