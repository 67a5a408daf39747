"""The real-model set (each module marks its tests ``realmodel`` and ``integration``, so that
the unit tier, ``-m "not integration"``, leaves them out): FastChat's controller, its
worker serving SmolLM2-135M-Instruct and another serving all-MiniLM-L6-v2 (both through
``devstack.worker``), and our server, as processes on loopback, started once per session. The
models are prepared into the dev stack's cache (:func:`devstack.realmodels.default_cache_dir`)
on first use and reused afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from devstack.realmodels import (CHAT_MODEL, EMBEDDING_MODEL, default_cache_dir,
                                 prepare_chat_model, prepare_embedding_model)
from devstack.stack import Stack
from devstack.worker import SMOLLM2_TEMPLATE

#: Models are loaded and answer slowly on 2 busy cores: generous, bounded waits.
TIMEOUT = 240


@pytest.fixture(scope="session")
def model_paths() -> dict[str, Path]:
    """The prepared models, by served name."""
    cache = default_cache_dir()
    return {CHAT_MODEL: prepare_chat_model(cache), EMBEDDING_MODEL: prepare_embedding_model(cache)}


@pytest.fixture(scope="session")
def real_stack(tmp_path_factory: pytest.TempPathFactory, model_paths: dict[str, Path]) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("real-stack")) as live:
        live.start_controller()
        live.start_worker(model_paths[CHAT_MODEL], model_name=CHAT_MODEL,
                          conv_template=SMOLLM2_TEMPLATE, module="devstack.worker")
        live.start_worker(model_paths[EMBEDDING_MODEL], model_name=EMBEDDING_MODEL,
                          conv_template=None, module="devstack.worker")
        live.start_gateway()
        yield live


@pytest.fixture(scope="session")
def base_url(real_stack: Stack) -> str:
    """The OpenAI base URL of our server in front of the real models."""
    assert real_stack.gateway is not None and real_stack.gateway.url is not None
    return f"{real_stack.gateway.url}/v1"


@pytest.fixture(scope="session")
def real_openai(base_url: str) -> Any:
    """The official client, no retries."""
    import openai

    return openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=TIMEOUT)


@pytest.fixture(scope="session")
def chat_tokenizer(model_paths: dict[str, Path]) -> Any:
    """SmolLM2's own tokenizer, with its chat template."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_paths[CHAT_MODEL])
