"""Per-key limits (``rpm``, ``tpm``, ``max_parallel``) and the per-model cap on requests in
flight (``limits.model_max_parallel``), as one pipeline step over a limiter with pluggable
storage: in this process by default, in Redis with ``limits.redis_url``.

The chat, completions and embeddings pipelines run inside :func:`admitted`, which checks the
key's access to the model, then every limit at once; past a key's limit the answer is a 429
with OpenAI's ``rate_limit_exceeded`` and ``Retry-After``, past the model's cap a 503 with
``Retry-After``. A limited key's answers carry OpenAI's ``x-ratelimit-*`` headers. Tokens are
charged before the request with what is known (``max_tokens`` times the choices, and the
prompt's characters / 4, OpenAI's rule of thumb) and settled after it with the usage the
pipeline records (``metrics.record_usage``), streams included. A request with a plain key, and
no model cap configured, costs nothing here.

Why not the ``limits`` package (5.8), which has async Redis and in-memory moving windows: it
has no slots (requests in flight), no way to give units back (token settlement after the
answer), and checks each limit on its own (one Redis round trip each, and a request refused
by its tokens would still have used up a request); its clock cannot be injected either.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterable

from aiohttp import web

from .. import errors, metrics
from ..config import LimitsConfig
from ..keys import Key, model_access
from ..record import RequestRecord, record_key, record_of
from ..typedefs import limiter_key, upstream_key
from .limiter import MemoryStorage, Rate, Slot, Storage, StorageError, Verdict

__all__ = ["Admission", "Limiter", "add_rate_headers", "admitted", "estimate_tokens", "storage_of"]

log = logging.getLogger(__name__)

PREFIX = "fastchat_api:limits:"
# Slot holders: unique across processes and hosts sharing a Redis, cheaper than random each.
_HOLDER = f"{os.urandom(6).hex()}-{{}}".format
_numbers = itertools.count()
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text


def estimate_tokens(texts: Iterable[str], completion: int) -> int:
    """The tokens a request is charged before it runs: ``completion`` tokens it may generate
    plus its texts' characters / 4, rounded up."""
    return completion + math.ceil(sum(len(text) for text in texts) / CHARS_PER_TOKEN)


def reset_text(seconds: float) -> str:
    """A duration as OpenAI's reset headers write it: ``250ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 10) / 10:g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


@dataclass(slots=True)
class Admission:
    """One admitted request's share of the limits: what to settle and free when it ends."""

    rates: tuple[Rate, ...]
    slots: tuple[Slot, ...]
    holder: str
    key_name: str | None

    @property
    def tokens(self) -> Rate | None:
        return next((rate for rate in self.rates if rate.kind == "tokens"), None)


def rate_headers(rates: Iterable[Rate], verdict: Verdict) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` of each rate."""
    headers = {}
    for rate, level in zip(rates, verdict.levels):
        headers[f"x-ratelimit-limit-{rate.kind}"] = str(rate.limit)
        headers[f"x-ratelimit-remaining-{rate.kind}"] = str(level.remaining)
        headers[f"x-ratelimit-reset-{rate.kind}"] = reset_text(level.reset)
    return headers


_RATE_NAMES = {"requests": "requests per minute (rpm)", "tokens": "tokens per minute (tpm)"}


class Limiter:
    """The limits of keys and models over ``storage``; ``config`` says what a failed storage
    means (``on_redis_error``) and the models' cap."""

    def __init__(self, config: LimitsConfig, storage: Storage) -> None:
        self.storage = storage
        self._model_cap = config.model_max_parallel
        self._refuse_on_error = config.on_redis_error == "refuse"
        self._failing = False

    def _limits(self, key: Key | None, model: str,
                tokens: Callable[[], int]) -> tuple[tuple[Rate, ...], tuple[Slot, ...]]:
        rates: list[Rate] = []
        slots: list[Slot] = []
        if key is not None:
            if key.rpm:
                rates.append(Rate(f"{PREFIX}rpm:{key.id}", "requests", key.rpm, 1))
            if key.tpm:
                rates.append(Rate(f"{PREFIX}tpm:{key.id}", "tokens", key.tpm, tokens()))
            if key.max_parallel:
                slots.append(Slot(f"{PREFIX}parallel:{key.id}", key.max_parallel))
        if self._model_cap:
            slots.append(Slot(f"{PREFIX}model:{model}", self._model_cap))
        return tuple(rates), tuple(slots)

    async def admit(self, record: RequestRecord, model: str,
                    tokens: Callable[[], int]) -> Admission | None:
        """Take the request's share of its key's limits and its model's cap, or raise the 429
        (a key's limit) or 503 (the model's cap; the storage failing under ``refuse``) that
        says which. None when no limit applies, or the storage failed under ``serve``. The
        answer's rate headers go on ``record``."""
        key = record.key
        if (key is None or not key.limited) and not self._model_cap:
            return None
        rates, slots = self._limits(key, model, tokens)
        holder = _HOLDER(next(_numbers))
        try:
            verdict = await self.storage.acquire(rates, slots, holder)
        except StorageError as exc:
            self._unchecked(exc)
            return None
        self._recovered()
        record.rate_headers = rate_headers(rates, verdict)
        if verdict.refused is not None:
            raise self._refusal(record.key_id, model, rates, slots, verdict)
        return Admission(rates, slots, holder, record.key_id)

    async def finish(self, admission: Admission, used: int | None) -> None:
        """Settle the tokens charged with ``used`` (None: keep the estimate) and free the
        slots; a failing storage is logged (its slots expire there)."""
        tokens = admission.tokens
        settle = [(tokens, used - tokens.cost)] if tokens and used is not None and used != tokens.cost else []
        if not settle and not admission.slots:
            return
        try:
            await self.storage.release(settle, admission.slots, admission.holder)
        except StorageError as exc:
            log.debug("Could not settle a request's limits: %s", exc)

    def _unchecked(self, exc: StorageError) -> None:
        """The storage failed: serve without limits, or refuse, as configured; said once per
        outage in the log, and counted for each request."""
        if not self._failing:
            self._failing = True
            then = "requests get 503" if self._refuse_on_error else "requests are served without limits"
            log.warning("Rate limits cannot be checked (%s): %s until it answers", exc, then)
        metrics.limits_unchecked("refused" if self._refuse_on_error else "served")
        if self._refuse_on_error:
            raise errors.unavailable(
                "Rate limits cannot be checked right now, so the request was not served; "
                "send it again shortly.", code="limits_unavailable",
                fastchat_code=errors.ErrorCode.INTERNAL_ERROR)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("Rate limits are checked again")

    @staticmethod
    def _refusal(key_name: str | None, model: str, rates: tuple[Rate, ...],
                 slots: tuple[Slot, ...], verdict: Verdict) -> errors.APIError:
        index = verdict.refused
        assert index is not None
        retry = str(max(1, math.ceil(verdict.retry_after)))
        if index >= len(rates):
            slot = slots[index - len(rates)]
            if slot.name.startswith(f"{PREFIX}model:"):
                metrics.rate_limited(None, "model_max_parallel")
                return errors.unavailable(
                    f"The model {model} has {slot.limit} requests in flight, its limit; send "
                    "the request again shortly.", retry_after=retry, code="model_overloaded",
                    fastchat_code=errors.ErrorCode.ENGINE_OVERLOADED)
            metrics.rate_limited(key_name, "max_parallel")
            message = (f"Rate limit reached for key {key_name} on requests in flight "
                       f"(max_parallel): limit {slot.limit}. Try again when one of its requests ends.")
            kind = "requests"
        else:
            rate = rates[index]
            kind = rate.kind
            metrics.rate_limited(key_name, "rpm" if kind == "requests" else "tpm")
            needs = f", requested {rate.cost}" if kind == "tokens" else ""
            message = (f"Rate limit reached for key {key_name} on {_RATE_NAMES[kind]}: limit "
                       f"{rate.limit}{needs}. Please try again in {retry}s.")
        return errors.APIError(message, status=429, code="rate_limit_exceeded", type=kind,
                               fastchat_code=errors.ErrorCode.RATE_LIMIT,
                               headers={"Retry-After": retry})


def storage_of(config: LimitsConfig) -> Storage:
    """Redis at ``redis_url`` when set, else this process. The Redis client is imported only
    then: it takes 7 MB of every process that loads it."""
    if config.redis_url:
        from .redis_store import RedisStorage

        return RedisStorage(config.redis_url, timeout=config.redis_timeout,
                            slot_timeout=config.slot_timeout)
    return MemoryStorage()


async def close_storage(app: web.Application) -> None:
    """``on_cleanup``: close the limiter's connections."""
    await app[limiter_key].storage.close()


def _used(record: RequestRecord) -> int | None:
    usage = record.usage
    if usage is None:
        return None
    return usage.get("total_tokens") or usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)


class admitted:  # noqa: N801 - used as ``async with admitted(...)``, as a function would be
    """``async with admitted(request, model, tokens)``: run the body as one request of the
    request's key for ``model``: a 404 (as for a model that does not exist) when the key may
    not use it, the limits checked (:class:`Limiter`), and at the end its tokens settled and
    its slots freed, whatever ended it (an error, the client hanging up). ``tokens`` estimates
    its cost, called only for a key with ``tpm``.

    The tokens charged are settled with the usage recorded on the request; a request that failed
    with an error before any of its answer went out used none; one cut short mid-stream keeps
    the estimate. A class rather than a generator: a plain key's request costs two calls here.
    """

    __slots__ = ("_request", "_model", "_tokens", "_admission")

    def __init__(self, request: web.Request, model: str, tokens: Callable[[], int]) -> None:
        self._request, self._model, self._tokens = request, model, tokens
        self._admission: Admission | None = None

    async def __aenter__(self) -> None:
        request = self._request
        allows = model_access(request)
        if allows is not None:
            await request.app[upstream_key].catalog.check_model(self._model, allows)
        self._admission = await request.app[limiter_key].admit(record_of(request), self._model,
                                                               self._tokens)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: object) -> None:
        admission = self._admission
        if admission is None:
            return
        record = record_of(self._request)
        used = _used(record)
        if used is None and isinstance(error, errors.APIError) and not record.streaming:
            used = 0
        limiter = self._request.app[limiter_key]
        done = limiter.finish(admission, used)
        # shielded: a second cancellation (the shutdown's) must not cut the release short
        await (asyncio.shield(done) if limiter.storage.remote else done)


async def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: a limited key's ``x-ratelimit-*`` on whatever answer its
    request gets (the answer, a stream, an error, the 429)."""
    record = request.get(record_key)
    if record is not None and record.rate_headers:
        response.headers.update(record.rate_headers)
