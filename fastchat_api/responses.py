"""OpenAI's response objects, shaped from what workers return.

Chat completions, text completions and their stream chunks, usage, finish reasons,
log-probabilities, embeddings and model cards, as the OpenAI API reference defines them (with
FastChat's extra fields where its clients read them).
"""

from __future__ import annotations

import base64
import math
import sys
import time
from array import array
from typing import Any, Iterable, Sequence

from . import __version__
from .ids import new_id
from .record import Usage
from .streaming import Cursor, Delta

# OpenAI's backend-configuration marker: which gateway build produced the answer.
SYSTEM_FINGERPRINT = f"fastchat_api-{__version__}"
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_LOGPROB_KEYS = ("tokens", "token_logprobs", "top_logprobs")

Frame = dict[str, Any]  # a worker's result or stream frame


def finish_reason(result: Frame) -> str:
    """OpenAI's finish reasons only; anything else a worker says (e.g. vLLM's abort) is a stop."""
    reason = result.get("finish_reason")
    return reason if reason in FINISH_REASONS else "stop"


def usage(prompt_tokens: int | None, results: Sequence[Frame]) -> Usage:
    """OpenAI's usage: the prompt counted once, completion tokens summed over choices.

    The worker's own prompt count wins over ours: it is what the model actually read.
    """
    counts = [r.get("usage") or {} for r in results]
    prompt = int(next((c["prompt_tokens"] for c in counts if c.get("prompt_tokens")), prompt_tokens or 0))
    completion = sum(int(c.get("completion_tokens") or 0) for c in counts)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def total_usage(parts: Iterable[Usage]) -> Usage:
    """Usages added up, e.g. one per prompt of a completions request."""
    totals: Usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for part in parts:
        totals["prompt_tokens"] += part.get("prompt_tokens", 0)
        totals["completion_tokens"] += part.get("completion_tokens", 0)
        totals["total_tokens"] += part.get("total_tokens", 0)
    return totals


def completion_logprobs(result: Frame, tokens: Delta | None = None) -> dict[str, list[Any]] | None:
    """The worker's logprobs in OpenAI's completions shape; null when it sent none.

    All its tokens by default, else those a stream chunk carries (``tokens``, see
    ``streaming.Cursor``). ``text_offset`` indexes the choice's text (``streaming.place_token``),
    not the worker's running sum of token lengths, which runs ahead of the text after a
    character split across tokens.
    """
    given = result.get("logprobs")
    if not isinstance(given, dict):
        return None
    if tokens is None:
        tokens = Cursor()(result, final=True)
    first, stop = tokens.first_token, tokens.first_token + len(tokens.offsets)
    shaped = {key: list(given.get(key) or ())[first:stop] for key in _LOGPROB_KEYS}
    return shaped | {"text_offset": tokens.offsets}


# The logprob of a token the worker gave none for, or an infinite one: OpenAI's own value for
# a token so unlikely it is not worth a number.
NO_LOGPROB = -9999.0
LOGPROBS_HEADER = "X-Logprobs"  # "unavailable": the worker gave no log-probabilities
TOP_LOGPROBS_HEADER = "X-Top-Logprobs"  # the alternatives per token given, fewer than asked


def _logprob(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return NO_LOGPROB


def _utf8(text: str) -> list[int]:
    return list(text.encode("utf-8", "surrogatepass"))


def _alternatives(given: Any, top: int) -> list[dict[str, Any]]:
    """A worker's ``{token: logprob}`` as OpenAI's ``top_logprobs``: the ``top`` likeliest."""
    if not isinstance(given, dict) or not top:
        return []
    ranked = sorted(given.items(), key=lambda item: _logprob(item[1]), reverse=True)[:top]
    return [{"token": str(token), "logprob": _logprob(value), "bytes": _utf8(str(token))}
            for token, value in ranked]


def chat_logprobs(result: Frame, top: int, tokens: Delta | None = None) -> dict[str, Any] | None:
    """The worker's logprobs in OpenAI's chat shape, ``{"content": [...], "refusal": null}``,
    with at most ``top`` alternatives per token; null when it sent none.

    All its tokens by default, else those a stream chunk carries (``streaming.Cursor``). A
    token is written as the text it accounts for in the content (``streaming.place_token``),
    ``bytes`` its UTF-8, so that the tokens of a chunk add up to its text exactly: a token
    that adds no text of its own (the end-of-sequence token, the rest of a character split
    across tokens) is ``""``.
    """
    given = result.get("logprobs")
    if not isinstance(given, dict):
        return None
    if tokens is None:
        tokens = Cursor()(result, final=True)
    text = result.get("text", "")
    values, alternatives = list(given.get("token_logprobs") or ()), list(given.get("top_logprobs") or ())
    content = []
    for number, (start, end) in enumerate(zip(tokens.offsets, [*tokens.offsets[1:], tokens.end])):
        index = tokens.first_token + number
        span = text[start:end]
        content.append({
            "token": span,
            "logprob": _logprob(values[index] if index < len(values) else None),
            "bytes": _utf8(span),
            "top_logprobs": _alternatives(alternatives[index] if index < len(alternatives) else None, top),
        })
    return {"content": content, "refusal": None}


def logprobs_headers(results: Sequence[Frame], top: int) -> dict[str, str]:
    """What the client is told when the workers gave less than it asked, by the frames they
    sent: ``X-Logprobs: unavailable`` when none carries log-probabilities (``logprobs`` is
    then null), else ``X-Top-Logprobs: <k>`` when they gave ``k`` alternatives per token,
    fewer than ``top`` (FastChat's HF worker gives none: ``k`` is 0)."""
    given = [frame["logprobs"] for frame in results if isinstance(frame.get("logprobs"), dict)]
    if not given:
        return {LOGPROBS_HEADER: "unavailable"}
    counts = [len(each) if isinstance(each, dict) else 0
              for logprobs in given for each in logprobs.get("top_logprobs") or ()]
    fewest = min(counts, default=top)
    return {TOP_LOGPROBS_HEADER: str(fewest)} if fewest < top else {}


def chunk_head(prefix: str, kind: str, model: str, *, include_usage: bool, fingerprint: bool) -> dict[str, Any]:
    """The fields every chunk of one stream shares (``usage`` null until the last, when the
    client asked for it)."""
    head: dict[str, Any] = {"id": new_id(prefix), "object": kind, "created": int(time.time()), "model": model}
    if fingerprint:
        head["system_fingerprint"] = SYSTEM_FINGERPRINT
    if include_usage:
        head["usage"] = None
    return head


def chat_completion(
    model: str, results: Sequence[Frame], totals: Usage, *, opening: str = "", top_logprobs: int | None = None
) -> dict[str, Any]:
    """A ``chat.completion``: choice ``i`` is ``results[i]``, its content after ``opening``
    (the start of the answer written into the prompt, ``guided``); with ``top_logprobs``
    (not None) the log-probabilities of the worker's tokens, that many alternatives each."""
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": opening + result.get("text", ""), "refusal": None},
                "logprobs": None if top_logprobs is None else chat_logprobs(result, top_logprobs),
                "finish_reason": finish_reason(result),
            }
            for index, result in enumerate(results)
        ],
        "usage": totals,
    }


def chat_chunk(
    head: dict[str, Any], index: int, delta: dict[str, Any], finish: str | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice's delta (and its tokens' ``logprobs``)."""
    return head | {"choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}


def text_completion(model: str, results: Sequence[Frame], totals: Usage) -> dict[str, Any]:
    """A ``text_completion``: choice ``i`` is ``results[i]``."""
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": index,
                "text": result.get("text", ""),
                "logprobs": completion_logprobs(result),
                "finish_reason": finish_reason(result),
            }
            for index, result in enumerate(results)
        ],
        "usage": totals,
    }


def text_completion_chunk(
    head: dict[str, Any], index: int, text: str, logprobs: dict[str, list[Any]] | None, finish: str | None
) -> dict[str, Any]:
    """A streamed ``text_completion`` with one choice's new text."""
    return head | {"choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}]}


def base64_float32(vector: list[float]) -> str:
    """What OpenAI clients decode with ``np.frombuffer(b64decode(s), dtype="float32")``:
    little-endian float32."""
    values = array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def embeddings(model: str, vectors: Iterable[list[float]], tokens: int, *, as_base64: bool) -> dict[str, Any]:
    """OpenAI's embeddings ``list``, vectors in input order."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": base64_float32(vector) if as_base64 else vector,
             "index": index}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_card(name: str, created: int) -> dict[str, Any]:
    """OpenAI's model object with FastChat's extra fields (root, parent, permission)."""
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "fastchat",
        "root": name,
        "parent": None,
        "permission": [
            {
                "id": new_id("modelperm-"),
                "object": "model_permission",
                "created": created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": True,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }
