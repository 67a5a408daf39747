"""devstack.models: the tiny random Llama, checked by loading it with transformers."""

from __future__ import annotations

import json
import time

import pytest

from devstack import models
from devstack.models import build_tiny_llama


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
    spec = models._model_spec("m")
    (tmp_path / "m").mkdir()
    assert not models._is_built(tmp_path / "m", spec)
    (tmp_path / "m" / models._MARKER).write_text(json.dumps({"spec": {**spec, "recipe": -1}}))
    assert not models._is_built(tmp_path / "m", spec)
    (tmp_path / "m" / models._MARKER).write_text(json.dumps({"spec": spec}))
    assert models._is_built(tmp_path / "m", spec)
