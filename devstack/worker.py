"""``python -m devstack.worker ARGS``: FastChat's own ``fastchat.serve.model_worker`` with ARGS,
after two registrations through FastChat's documented extension points
(``register_conv_template``, ``register_model_adapter``). FastChat's code runs unmodified.

* The conversation template ``smollm2``: SmolLM2-Instruct's own chat template (in its
  tokenizer) is ChatML with a default system line. No template of fschat 0.2.36 renders it:
  none has that system line, and the ChatML ones stop on token ids that are ordinary words in
  SmolLM2's vocabulary (32000 is "ertools", 32001 " graffiti"), which would cut answers.
* For a sentence-transformers model directory (one with ``modules.json``), an adapter that
  loads it with ``AutoModel``. Under any other adapter the worker loads a BERT checkpoint with
  ``AutoModelForCausalLM`` and answers vocabulary logits (30,522 numbers) as embeddings.
  FastChat's embedding code for BERT models mean-pools the last hidden state over the
  non-padding tokens and L2-normalises: the pooling of the models this adapter accepts (it
  refuses others, e.g. CLS pooling). FastChat calls the model without the attention mask, so
  the shorter texts of a batch would be encoded attending to the padding (cosine ~0.94 to
  their true vectors); the adapter supplies the mask FastChat computed anyway.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["SMOLLM2_TEMPLATE", "main", "register_smollm2_template", "sentence_transformers_adapter"]

SMOLLM2_TEMPLATE = "smollm2"
#: SmolLM2-Instruct's system line when the conversation has none (its tokenizer's template).
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
#: ``<|im_end|>`` in SmolLM2's vocabulary: its end of a turn and its eos_token_id.
SMOLLM2_IM_END_ID = 2


def register_smollm2_template() -> None:
    """Register (again: replace) the conversation template ``smollm2`` with FastChat."""
    from fastchat.conversation import Conversation, SeparatorStyle, register_conv_template

    register_conv_template(Conversation(
        name=SMOLLM2_TEMPLATE,
        system_template="<|im_start|>system\n{system_message}",
        system_message=SMOLLM2_SYSTEM,
        roles=("<|im_start|>user", "<|im_start|>assistant"),
        sep_style=SeparatorStyle.CHATML,
        sep="<|im_end|>",
        stop_str="<|im_end|>",
        stop_token_ids=[SMOLLM2_IM_END_ID],
    ), override=True)


def sentence_transformers_pooling(model_path: Path) -> None:
    """Check that the sentence-transformers model in ``model_path`` is a transformer, mean
    pooling and normalisation, which is what FastChat's worker computes for BERT models;
    :class:`ValueError` naming what differs."""
    modules = json.loads((model_path / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise ValueError(f"{model_path}: modules {kinds}; FastChat's worker computes "
                         "Transformer, Pooling (mean), Normalize")
    pooling_dir = modules[kinds.index("Pooling")]["path"]
    pooling = json.loads((model_path / pooling_dir / "config.json").read_text())
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"{model_path}: pooling {modes}; FastChat's worker mean-pools")


def sentence_transformers_adapter(model_path: str) -> type:
    """A FastChat model adapter class for the sentence-transformers model at ``model_path``
    (matched by that path or its directory name, as FastChat looks adapters up)."""
    from fastchat.conversation import get_conv_template
    from fastchat.model.model_adapter import BaseModelAdapter
    from transformers import AutoModel, AutoTokenizer

    names = {model_path, os.path.basename(os.path.normpath(model_path))}

    class SentenceTransformersAdapter(BaseModelAdapter):  # type: ignore[misc]
        def match(self, path: str) -> bool:
            return path in names

        def load_model(self, path: str, from_pretrained_kwargs: dict[str, Any]) -> Any:
            model = AutoModel.from_pretrained(path, **from_pretrained_kwargs)
            tokenizer = AutoTokenizer.from_pretrained(path)

            def with_attention_mask(_module: Any, args: tuple[Any, ...],
                                    kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
                if kwargs.get("attention_mask") is None:
                    input_ids = args[0] if args else kwargs["input_ids"]
                    kwargs["attention_mask"] = (input_ids != tokenizer.pad_token_id).long()
                return args, kwargs

            model.register_forward_pre_hook(with_attention_mask, with_kwargs=True)
            model.eval()
            return model, tokenizer

        def get_default_conv_template(self, path: str) -> Any:
            return get_conv_template("one_shot")  # what E5/BGE report; the model only embeds

    return SentenceTransformersAdapter


def model_path_arg(argv: Sequence[str]) -> str | None:
    """The value of ``--model-path`` in ``argv``."""
    for i, arg in enumerate(argv):
        if arg == "--model-path" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--model-path="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Register, then run ``fastchat.serve.model_worker`` as ``__main__`` with ``argv``."""
    from fastchat.model.model_adapter import get_model_adapter, register_model_adapter

    args = list(sys.argv[1:] if argv is None else argv)
    register_smollm2_template()
    path = model_path_arg(args)
    if path is not None and os.path.isfile(os.path.join(path, "modules.json")):
        sentence_transformers_pooling(Path(path))
        adapter = sentence_transformers_adapter(path)
        register_model_adapter(adapter)
        if not isinstance(get_model_adapter(path), adapter):
            raise SystemExit(f"devstack.worker: another FastChat adapter claims {path}; "
                             "rename the model directory")
    sys.argv = ["fastchat.serve.model_worker", *args]
    runpy.run_module("fastchat.serve.model_worker", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
