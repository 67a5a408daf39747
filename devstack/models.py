"""A tiny randomly initialised Llama that FastChat's real ``model_worker`` serves on a CPU.

The integration tests and the dev stack need a real model behind FastChat's real worker, one
that loads in seconds and needs nothing from a model hub: it is built here from a fixed
recipe (a byte-level BPE tokenizer trained on a built-in corpus, two layers of random weights
from a fixed seed). ``torch``, ``transformers`` and ``tokenizers`` are imported only when a
model is built.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

__all__ = ["DEFAULT_MODEL_NAME", "build_tiny_llama"]

DEFAULT_MODEL_NAME = "tiny-llama"

# Bump when the recipe below changes: a model built by an older recipe is rebuilt.
_RECIPE_VERSION = 1
_MARKER = ".devstack-model.json"

_CORPUS_LINES = (
    "A chat between a curious user and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: Hello! Who are you? ASSISTANT: I am a tiny language model used for tests.",
    "USER: What is the capital of France? ASSISTANT: The capital of France is Paris.",
    "USER: Tell me a joke. ASSISTANT: Why did the chicken cross the road?",
    "USER: Write a haiku about the sea. ASSISTANT: Waves fold into foam, salt wind hums.",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
    "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.",
    "Python, JSON, HTTP, OpenAI, FastChat, aiohttp, streaming, embeddings, tokens.",
    "def hello(name):\n    return f'Hello, {name}!'\n\nprint(hello('world'))",
    '{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}]}',
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 1000 3.14159 2.71828 -1 1e-5",
    "Once upon a time, in a land far away, there lived a small model that "
    "generated random words with great confidence.",
    "Bonjour, comment allez-vous? Guten Tag! ¿Qué tal? Ciao! こんにちは 你好 🙂",
    "system user assistant function tool stop length content role name",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua.",
)

_WORDS = (
    "time person year way day thing man world life hand part child eye woman place "
    "work week case point government company number group problem fact be have do "
    "say get make go know take see come think look want give use find tell ask "
    "seem feel try leave call good new first last long great little own other old "
    "right big high different small large next early young important few public "
    "bad same able model token stream server worker controller request response "
    "answer question message chat prompt context length batch queue cache memory"
).split()


def _training_corpus() -> list[str]:
    """A few KiB of deterministic text, enough for ~1000 byte-level BPE merges."""
    lines = list(_CORPUS_LINES)
    n = len(_WORDS)
    for i in range(300):
        a, b, c, d = (_WORDS[(i * k + k * k) % n] for k in (1, 3, 7, 11))
        lines.append(f"The {a} of the {b} is {c}, said the {d} in {1900 + i}.")
    return lines


def _model_spec(name: str) -> dict[str, Any]:
    return {
        "recipe": _RECIPE_VERSION,
        "name": name,
        "vocab_size": 1000,
        "hidden_size": 64,
        "intermediate_size": 172,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 2048,
        "seed": 0,
    }


def _is_built(path: Path, spec: Mapping[str, Any]) -> bool:
    try:
        return json.loads((path / _MARKER).read_text())["spec"] == dict(spec)
    except (OSError, ValueError, KeyError, TypeError):
        return False



def build_tiny_llama(directory: Path, name: str = DEFAULT_MODEL_NAME) -> Path:
    """Build (or reuse) a randomly initialised tiny Llama in ``directory / name``.

    The model has 2 layers, hidden size 64, 4 heads, ``max_position_embeddings`` 2048 and a
    byte-level BPE tokenizer (~1000 tokens; ``<unk>``=0, ``<s>``=1, ``</s>``=2) that prepends
    ``<s>`` like Llama's. Weights are deterministic (``torch.manual_seed``). The build is
    idempotent: a marker file records the recipe, and a complete build is reused. Builds go to
    a temporary directory first and are renamed into place, so concurrent callers never see
    half a model.

    Returns the model directory (FastChat's ``--model-path``). Raises :class:`ImportError`
    without torch, transformers and tokenizers, :class:`OSError` if ``directory`` is not
    writable.
    """
    directory = Path(directory)
    target = directory / name
    spec = _model_spec(name)
    if _is_built(target, spec):
        return target
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=directory))
    try:
        tokenizer, special_ids = _train_tokenizer(spec)
        _save_model(tmp, spec, tokenizer)
        marker = {"spec": spec, "vocab_size": len(tokenizer), "special_token_ids": special_ids,
                  "build_seconds": round(time.monotonic() - started, 3)}
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp made it 0700
        _move_into_place(tmp, target, spec)
        return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _train_tokenizer(spec: Mapping[str, Any]) -> tuple[Any, dict[str, int]]:
    """A ``PreTrainedTokenizerFast`` trained on the corpus, and the ids of its special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=1,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    ids = {token: tok.token_to_id(token) for token in ("<unk>", "<s>", "</s>")}
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                      special_tokens=[("<s>", ids["<s>"])]),
    ])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=spec["max_position_embeddings"],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    return hf_tok, ids


def _save_model(path: Path, spec: Mapping[str, Any], tokenizer: Any) -> None:
    """Random Llama weights from ``spec``'s seed, and ``tokenizer``, saved in ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"],
        max_position_embeddings=spec["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec["seed"])
    model = LlamaForCausalLM(config)
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def _move_into_place(tmp: Path, target: Path, spec: Mapping[str, Any]) -> None:
    """Rename the finished build ``tmp`` to ``target``, unless a concurrent build got there
    first; a stale or partial ``target`` is replaced."""
    if _is_built(target, spec):
        return
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError as exc:
        if not (exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and _is_built(target, spec)):
            raise
