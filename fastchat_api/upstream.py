"""The FastChat controller and model workers, reached through one pooled session per process.

FastChat's own server opens a new connection for every control-plane call and asks the controller
for the model list on every request. Here one ``ClientSession`` is shared, the model list is kept
for a short time, and what a worker says about itself (template, context length) is kept per
worker until it expires or the worker fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp

from . import errors, metrics
from .config import Config, UpstreamConfig
from .cache import Cached
from .conversation import Template
from .routing import Router
from .jsonutil import JSONDecodeError, dumps, loads

_JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": "fastchat_api"}


def _worker_of(url: str) -> str:
    """The worker address of one of its routes' URLs."""
    return url.rpartition("/")[0]


def _bad_response(url: str, message: str) -> errors.APIError:
    """A 502 for a worker answer that cannot be used, counted against that worker."""
    metrics.upstream_error(_worker_of(url), "bad_response")
    return errors.upstream_failed(message)


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    """What a worker says about a model it serves: stable for the worker's lifetime."""

    template: Template
    context_length: int


def create_session(config: UpstreamConfig) -> aiohttp.ClientSession:
    """The process-wide session: no cookies shared between tenants, no total time limit.

    A stream may run for minutes, so only the connect time and the gap between two reads are
    bounded; control-plane calls add their own total limit.
    """
    connector = aiohttp.TCPConnector(
        limit=config.max_connections,
        keepalive_timeout=config.keepalive_timeout,
        ttl_dns_cache=300,
    )
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
        auto_decompress=False,
    )


class Upstream:
    """Calls to the controller and to workers, with FastChat's semantics and clear errors."""

    def __init__(self, session: aiohttp.ClientSession, config: Config) -> None:
        self._session = session
        self._controller = config.controller.address.rstrip("/")
        self._model_ttl = config.controller.model_list_ttl
        self._facts_ttl = config.upstream.worker_facts_ttl
        self._max_frame = config.upstream.max_frame_size
        self._control_timeout = aiohttp.ClientTimeout(
            total=config.upstream.connect_timeout + config.upstream.read_timeout,
            sock_connect=config.upstream.connect_timeout,
        )
        grace = config.controller.outage_grace
        self._models: list[str] = []
        self._model_list = Cached(self._list_models, ttl=self._model_ttl, max_age=grace,
                                  name="the model list")
        self._missing_since: dict[str, float] = {}  # models the controller stopped listing
        self._multimodal = Cached(self._list_multimodal_models, ttl=self._model_ttl, max_age=grace,
                                  name="the multimodal model list")
        self._facts: dict[tuple[str, str], Cached[WorkerFacts]] = {}
        self._outage_grace = config.controller.outage_grace
        self.skip_token_count = config.upstream.skip_token_count
        self._router = Router(
            self._ask_controller,
            ttl=config.controller.worker_address_ttl,
            refresh_interval=config.controller.refresh_interval,
            outage_grace=config.controller.outage_grace,
        )

    async def close(self) -> None:
        """Stop background work (routing and cache refreshes) before the session closes."""
        for cached in (self._model_list, self._multimodal, *self._facts.values()):
            cached.cancel()
        await self._router.close()

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(
        self, url: str, payload: Any, what: str, *, worker: str | None = None,
        not_found: errors.APIError | None = None,
    ) -> Any:
        """POST JSON and return the decoded answer, turning every failure into an APIError.

        ``not_found`` is raised instead when the route does not exist there (HTTP 404).
        """
        try:
            async with self._session.post(
                url,
                data=b"" if payload is None else dumps(payload),
                headers=_JSON_HEADERS,
                timeout=self._control_timeout,
            ) as resp:
                body = await resp.read()
                status, reason = resp.status, resp.reason
        except Exception as exc:
            raise self._failure(exc, what, url, worker) from exc
        if status == 404 and not_found is not None:
            raise not_found
        if status != 200:
            raise self._http_error(worker, what, url, status, reason)
        try:
            return loads(body)
        except JSONDecodeError:
            metrics.upstream_error(worker, "bad_response")
            raise errors.upstream_failed(f"{what} at {url} answered with invalid JSON") from None

    def _failure(self, exc: BaseException, what: str, url: str, worker: str | None) -> BaseException:
        """Map a transport error to the status the client should see."""
        if isinstance(exc, errors.APIError) or not isinstance(exc, Exception):
            return exc
        if worker:
            self.forget(worker)
        if isinstance(exc, TimeoutError):
            metrics.upstream_error(worker, "timeout")
            return errors.upstream_timeout(f"{what} at {url} did not answer in time")
        if isinstance(exc, aiohttp.ClientError):
            metrics.upstream_error(worker, "connection")
            detail = type(exc).__name__
            if worker is None:
                return errors.controller_unreachable(
                    f"The controller at {self._controller} cannot be reached ({detail})"
                )
            return errors.upstream_failed(f"{what} at {url} failed ({detail})", failed_worker=worker)
        return exc

    def _http_error(
        self, worker: str | None, what: str, url: str, status: int, reason: str | None
    ) -> errors.APIError:
        """A non-200 answer: counted, the worker forgotten; a worker's 5xx is worth a retry."""
        metrics.upstream_error(worker, "http_status")
        if worker:
            self.forget(worker)
        return errors.upstream_failed(
            f"{what} at {url} answered HTTP {status} {reason}",
            failed_worker=worker if status >= 500 else None,
        )

    def forget(self, worker: str) -> None:
        """Drop what we know of a worker that failed: no request is routed to it until the
        controller names it again, and its facts are asked afresh."""
        self._router.drop(worker)
        for key in [key for key in self._facts if key[0] == worker]:
            self._facts.pop(key).cancel()

    # -- controller -------------------------------------------------------------------------

    async def models(self, *, poll_workers: bool = False) -> list[str]:
        """Model names the controller's workers serve, sorted; fresh for ``model_list_ttl``,
        then refreshed in the background, served stale through a controller outage for
        ``outage_grace``.

        With ``poll_workers`` (``/v1/models``) a list older than ``model_list_ttl`` is fetched
        after asking the controller to re-poll its workers, as FastChat's ``/v1/models`` does
        every time, so that dead workers stop being listed.
        """
        if not poll_workers or self._model_list.age < self._model_ttl:
            return await self._model_list.get()
        with contextlib.suppress(errors.APIError):  # the listing that follows decides
            await self._call(f"{self._controller}/refresh_all_workers", None, "The controller")
        return await self._model_list.fresh()

    async def _list_models(self) -> list[str]:
        answer = await self._call(f"{self._controller}/list_models", None, "The controller")
        models = sorted(answer.get("models") or [])
        self._note_missing(models)
        return models

    def _note_missing(self, models: list[str]) -> None:
        """Take the controller's new list, noting when each model left it."""
        for name in set(self._models).difference(models):
            self._missing_since.setdefault(name, time.monotonic())
        for name in models:
            self._missing_since.pop(name, None)
        self._models = models

    async def controller_models(self) -> list[str]:
        """The controller's model list asked now, past the cache and the outage grace: what
        ``/ready`` reports, so that an orchestrator sees a controller outage at once."""
        answer = await self._call(f"{self._controller}/list_models", None, "The controller")
        return sorted(answer.get("models") or [])

    async def multimodal_models(self) -> frozenset[str]:
        """Model names served by workers registered with ``multimodal: true``; cached like
        :meth:`models`. Only these are sent images."""
        return await self._multimodal.get()

    async def _list_multimodal_models(self) -> frozenset[str]:
        answer = await self._call(f"{self._controller}/list_multimodal_models", None, "The controller")
        return frozenset(answer.get("models") or ())

    async def check_model(self, model: str) -> None:
        """404 with FastChat's text (code 40301) unless a worker serves ``model``.

        A name missing from the cached list is looked up once more, since a worker may have
        registered since. For ``outage_grace`` seconds after the controller stopped listing a
        model, a request for it is a 503 with Retry-After instead: its workers are likely coming
        back (a restarted controller knows a worker only from its next heartbeat), so clients
        should retry rather than give up.
        """
        models = await self.models()
        if model not in models:
            models = await self._model_list.fresh()
        if model in models:
            return
        missing = self._missing_since.get(model)
        if missing is not None and time.monotonic() - missing < self._outage_grace:
            raise errors.upstream_unavailable(
                f"No worker serves {model} right now: the controller listed it until moments "
                "ago, and its workers may be registering again (e.g. after a controller restart)"
            )
        raise errors.model_not_found(f"Only {'&&'.join(models)} allowed now, your model {model}")

    async def worker_address(self, model: str) -> str:
        """A worker for this request: one the controller named recently (see ``routing``)."""
        return await self._router.pick(model)

    async def _ask_controller(self, model: str) -> str:
        """The worker the controller's dispatch picks now."""
        answer = await self._call(
            f"{self._controller}/get_worker_address", {"model": model}, "The controller"
        )
        address = answer.get("address") if isinstance(answer, dict) else None
        if not address:
            raise errors.upstream_unavailable(f"No available worker for {model}")
        return address.rstrip("/")

    # -- workers ----------------------------------------------------------------------------

    async def facts(self, worker: str, model: str) -> WorkerFacts:
        """The worker's conversation template and context length, one fetch shared by every
        request, reused for ``worker_facts_ttl`` and then refreshed in the background."""
        key = (worker, model)
        cached = self._facts.get(key)
        if cached is None:
            cached = self._facts[key] = Cached(
                lambda: self._fetch_facts(worker, model), ttl=self._facts_ttl,
                max_age=2 * self._facts_ttl, name=f"the template of {model} at {worker}",
            )
        return await cached.get()

    async def _fetch_facts(self, worker: str, model: str) -> WorkerFacts:
        conv, details = await asyncio.gather(
            self._call(f"{worker}/worker_get_conv_template", {"model": model},
                       "The worker", worker=worker),
            self._call(f"{worker}/model_details", {"model": model}, "The worker", worker=worker),
        )
        return WorkerFacts(
            template=Template.from_worker(conv["conv"], worker),
            context_length=int(details["context_length"]),
        )

    async def count_tokens(self, worker: str, model: str, prompt: str) -> int:
        """The worker tokenizer's count of ``prompt``, special tokens included."""
        answer = await self._call(
            f"{worker}/count_token", {"model": model, "prompt": prompt}, "The worker", worker=worker
        )
        return int(answer["count"])

    async def embeddings(self, worker: str, model: str, inputs: list[str]) -> dict[str, Any]:
        """``/worker_get_embeddings``: one float vector per input, in order, and ``token_num``.

        The worker is always asked for floats: its base64 is the tensor's own dtype (float16 on
        half-precision models), which clients would misread as float32.
        """
        url = f"{worker}/worker_get_embeddings"
        payload = {"model": model, "input": inputs, "encoding_format": None}
        unsupported = errors.APIError(
            f"The model {model} does not compute embeddings: its worker at {worker} has no "
            "/worker_get_embeddings route (FastChat's vLLM, SGLang and other engine workers lack it)",
            param="model",
            code="embeddings_not_supported",
        )
        answer = await self._call(url, payload, "The worker", worker=worker, not_found=unsupported)
        answer = self._checked(answer, url)
        vectors = answer.get("embedding")
        if not isinstance(vectors, list) or len(vectors) != len(inputs):
            raise _bad_response(url, f"The worker at {url} did not send one embedding per input")
        return answer

    async def generate(self, worker: str, params: dict[str, Any]) -> dict[str, Any]:
        """One whole generation (``/worker_generate``): the worker's last chunk."""
        url = f"{worker}/worker_generate"
        try:
            async with self._session.post(url, data=dumps(params), headers=_JSON_HEADERS) as resp:
                body = await resp.read()
                status, reason = resp.status, resp.reason
        except Exception as exc:
            raise self._failure(exc, "The worker", url, worker) from exc
        if status != 200:
            raise self._http_error(worker, "The worker", url, status, reason)
        return self._decode(body, url)

    async def generate_stream(
        self, worker: str, params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """The worker's ``\\0``-separated JSON frames, each the cumulative output so far."""
        url = f"{worker}/worker_generate_stream"
        try:
            async with self._session.post(url, data=dumps(params), headers=_JSON_HEADERS) as resp:
                if resp.status != 200:
                    raise self._http_error(worker, "The worker", url, resp.status, resp.reason)
                async for frame in self._frames(resp.content, url):
                    yield frame
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._failure(exc, "The worker", url, worker) from exc

    async def _frames(self, content: aiohttp.StreamReader, url: str) -> AsyncIterator[dict]:
        """Split the byte stream on NUL; TCP may cut or join frames anywhere."""
        pending = b""
        async for data in content.iter_any():
            if pending:
                data = pending + data
            *frames, pending = data.split(b"\0")
            for frame in frames:
                if frame:
                    yield self._decode(frame, url)
            if len(pending) > self._max_frame:
                raise _bad_response(url, f"The worker at {url} sent a frame over the size limit")
        if pending.strip():
            yield self._decode(pending, url)

    @classmethod
    def _decode(cls, frame: bytes, url: str) -> dict[str, Any]:
        """A worker result or frame; one reporting an error (``error_code`` not 0) is raised."""
        try:
            result = loads(frame)
        except JSONDecodeError:
            raise _bad_response(url, f"The worker at {url} sent something that is not JSON") from None
        return cls._checked(result, url)

    @staticmethod
    def _checked(result: Any, url: str) -> dict[str, Any]:
        """A decoded worker answer, raised as an APIError when it reports an error."""
        code = result.get("error_code") if isinstance(result, dict) else None
        if code:
            text = str(result.get("text") or "The worker failed without a message")
            status = 503 if code == errors.ErrorCode.CUDA_OUT_OF_MEMORY else 502
            metrics.upstream_error(_worker_of(url), "worker_error")
            raise errors.APIError(text, status=status, code="worker_error", fastchat_code=code)
        if not isinstance(result, dict):
            raise _bad_response(url, f"The worker at {url} sent JSON that is not an object")
        return result
