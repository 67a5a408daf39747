"""The transport: FastChat's controller and worker routes over one pooled session.

Every call goes through one request helper, which maps what can go wrong on the wire to the
status a client should see (504 for a timeout, 502 for a broken answer, 503 for an unreachable
controller) and reports a failed worker, so the catalog and the balancer forget it. The URL
that failed travels as the error's ``address`` and what went wrong there (an exception's text,
a worker's error message) as its ``detail``, never in the message itself: see ``errors``.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncGenerator, AsyncIterator, Callable, TypeVar

import aiohttp

from .. import errors, metrics
from ..config import UpstreamConfig
from ..jsonutil import JSONDecodeError, dumps, loads

_JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": "fastchat_api"}
_CONTROLLER = "The controller"
_WORKER = "The worker"

Frame = dict[str, Any]
T = TypeVar("T")


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


def _worker_of(url: str) -> str:
    """The worker address of one of its routes' URLs."""
    return url.rpartition("/")[0]


def _bad_response(url: str, message: str) -> errors.APIError:
    """A 502 for a worker answer that cannot be used, counted against that worker."""
    metrics.upstream_error(_worker_of(url), "bad_response")
    return errors.upstream_failed(message, address=url)


def checked(result: Any, url: str) -> Frame:
    """A decoded worker answer, raised as an APIError when it reports an error
    (FastChat's ``error_code``: see ``errors.worker_error``)."""
    code = result.get("error_code") if isinstance(result, dict) else None
    if code:
        metrics.upstream_error(_worker_of(url), "worker_error")
        raise errors.worker_error(code, str(result.get("text") or "(no message)"), url)
    if not isinstance(result, dict):
        raise _bad_response(url, "The worker sent JSON that is not an object")
    return result


def _field(answer: Any, key: str, kind: Callable[[Any], T], url: str) -> T:
    """``kind(answer[key])``, or a 502 naming the field when the worker left it out or sent
    something else (a broken worker is the worker's fault, not a 500 of ours)."""
    try:
        return kind(answer[key])
    except (KeyError, TypeError, ValueError):
        raise _bad_response(url, f"The worker's answer has no valid '{key}'") from None


def _decode(frame: bytes, url: str) -> Frame:
    """A worker result or frame; one reporting an error (``error_code`` not 0) is raised."""
    try:
        result = loads(frame)
    except JSONDecodeError:
        raise _bad_response(url, "The worker sent something that is not JSON") from None
    return checked(result, url)


class UpstreamClient:
    """FastChat's controller and worker routes, each a method, with clear errors.

    ``on_worker_failure(address)`` is called when a worker fails on the wire or answers with a
    non-200 status, so that nothing is routed to it until the controller names it again.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: UpstreamConfig,
        controller: str,
        on_worker_failure: Callable[[str], None],
    ) -> None:
        self._session = session
        self._controller = controller.rstrip("/")
        self._max_frame = config.max_frame_size
        self._on_worker_failure = on_worker_failure
        self._control_timeout = aiohttp.ClientTimeout(
            total=config.connect_timeout + config.read_timeout, sock_connect=config.connect_timeout
        )

    # -- the one request helper ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _post(
        self, url: str, payload: Any, *, worker: str | None = None, control: bool = True,
        not_found: errors.APIError | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST JSON and yield the 200 response; every failure, reading included, raised as
        an APIError. ``control`` calls have a total time limit, generations only read gaps;
        ``not_found`` is raised instead when the route does not exist there (HTTP 404)."""
        what = _WORKER if worker else _CONTROLLER
        timeout = self._control_timeout if control else self._session.timeout
        try:
            # The JSON is not held in this frame: a stream keeps the frame for minutes, and
            # orjson's bytes take 4 KiB whatever their length.
            async with self._session.post(url, data=b"" if payload is None else dumps(payload),
                                          headers=_JSON_HEADERS, timeout=timeout) as resp:
                if resp.status == 404 and not_found is not None:
                    raise not_found
                if resp.status != 200:
                    raise self._http_error(worker, what, url, resp.status, resp.reason)
                yield resp
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._failure(exc, what, url, worker) from exc

    async def _call(
        self, url: str, payload: Any, *, worker: str | None = None,
        not_found: errors.APIError | None = None,
    ) -> Any:
        """A control-plane call: its JSON answer, decoded."""
        async with self._post(url, payload, worker=worker, not_found=not_found) as resp:
            body = await resp.read()
        try:
            return loads(body)
        except JSONDecodeError:
            metrics.upstream_error(worker, "bad_response")
            who = _WORKER if worker else _CONTROLLER
            raise errors.upstream_failed(f"{who} answered with invalid JSON", address=url) from None

    def _failure(self, exc: Exception, what: str, url: str, worker: str | None) -> errors.APIError:
        """Map a transport error to the status the client should see."""
        if worker:
            self._on_worker_failure(worker)
        if isinstance(exc, TimeoutError):
            metrics.upstream_error(worker, "timeout")
            return errors.upstream_timeout(f"{what} did not answer in time", address=url)
        metrics.upstream_error(worker, "connection")
        kind, detail = type(exc).__name__, str(exc)
        if worker is None:
            return errors.controller_unreachable(
                f"The controller cannot be reached ({kind})", address=self._controller, detail=detail
            )
        return errors.upstream_failed(f"{what} failed ({kind})", failed_worker=worker, address=url,
                                      detail=detail)

    def _http_error(
        self, worker: str | None, what: str, url: str, status: int, reason: str | None
    ) -> errors.APIError:
        """A non-200 answer: counted, the worker forgotten; a worker's 5xx is worth a retry."""
        metrics.upstream_error(worker, "http_status")
        if worker:
            self._on_worker_failure(worker)
        return errors.upstream_failed(
            f"{what} answered HTTP {status} {reason}",
            failed_worker=worker if status >= 500 else None,
            address=url,
        )

    # -- the controller -----------------------------------------------------------------------

    async def list_models(self) -> list[str]:
        """``/list_models``: the names the registered workers serve, sorted."""
        answer = await self._call(f"{self._controller}/list_models", None)
        return sorted(answer.get("models") or [])

    async def list_multimodal_models(self) -> frozenset[str]:
        """``/list_multimodal_models``: the names served by workers registered as multimodal."""
        answer = await self._call(f"{self._controller}/list_multimodal_models", None)
        return frozenset(answer.get("models") or ())

    async def refresh_all_workers(self) -> None:
        """``/refresh_all_workers``: the controller re-polls its workers, dropping dead ones."""
        await self._call(f"{self._controller}/refresh_all_workers", None)

    async def get_worker_address(self, model: str) -> str:
        """``/get_worker_address``: the worker the controller's dispatch picks now; 503 when
        it names none."""
        answer = await self._call(f"{self._controller}/get_worker_address", {"model": model})
        address = answer.get("address") if isinstance(answer, dict) else None
        if not address:
            raise errors.upstream_unavailable(f"No available worker for {model}")
        return str(address).rstrip("/")

    # -- workers ------------------------------------------------------------------------------

    async def conv_template(self, worker: str, model: str) -> dict[str, Any]:
        """``/worker_get_conv_template``: the worker's conversation template, as FastChat
        serialises it (``{"conv": {...}}``)."""
        url = f"{worker}/worker_get_conv_template"
        return _field(await self._call(url, {"model": model}, worker=worker), "conv", dict, url)

    async def context_length(self, worker: str, model: str) -> int:
        """``/model_details``: the model's context length in tokens."""
        url = f"{worker}/model_details"
        return _field(await self._call(url, {"model": model}, worker=worker), "context_length", int, url)

    async def count_tokens(self, worker: str, model: str, prompt: str) -> int:
        """``/count_token``: the worker tokenizer's count of ``prompt``, special tokens included."""
        url, payload = f"{worker}/count_token", {"model": model, "prompt": prompt}
        return _field(await self._call(url, payload, worker=worker), "count", int, url)

    async def embeddings(self, worker: str, model: str, inputs: list[str]) -> Frame:
        """``/worker_get_embeddings``: one float vector per input, in order, and ``token_num``.

        The worker is always asked for floats: its base64 is the tensor's own dtype (float16 on
        half-precision models), which clients would misread as float32.
        """
        url = f"{worker}/worker_get_embeddings"
        payload = {"model": model, "input": inputs, "encoding_format": None}
        unsupported = errors.APIError(
            f"The model {model} does not compute embeddings: its worker has no "
            "/worker_get_embeddings route (FastChat's vLLM, SGLang and other engine workers lack it)",
            param="model",
            code="unsupported_value",
            address=worker,
        )
        answer = checked(await self._call(url, payload, worker=worker, not_found=unsupported), url)
        vectors = answer.get("embedding")
        if not isinstance(vectors, list) or len(vectors) != len(inputs):
            raise _bad_response(url, "The worker did not send one embedding per input")
        return answer

    async def generate(self, worker: str, params: dict[str, Any]) -> Frame:
        """``/worker_generate``: one whole generation, the worker's last frame."""
        url = f"{worker}/worker_generate"
        async with self._post(url, params, worker=worker, control=False) as resp:
            body = await resp.read()
        return _decode(body, url)

    async def generate_stream(self, worker: str, params: dict[str, Any]) -> AsyncGenerator[Frame, None]:
        """``/worker_generate_stream``: NUL-separated JSON frames, each the whole output so far."""
        url = f"{worker}/worker_generate_stream"
        async with self._post(url, params, worker=worker, control=False) as resp:
            async for frame in self._frames(resp.content, url):
                yield frame

    async def _frames(self, content: aiohttp.StreamReader, url: str) -> AsyncIterator[Frame]:
        """Split the byte stream on NUL; TCP may cut or join frames anywhere. A frame over
        ``upstream.max_frame_size`` bytes is a 502, not unbounded memory, whether it is still
        coming or arrived whole in one read."""
        too_large = "The worker sent a frame over the size limit"
        pending = b""
        async for data in content.iter_any():
            if pending:
                data = pending + data
            *frames, pending = data.split(b"\0")
            for frame in frames:
                if len(frame) > self._max_frame:
                    raise _bad_response(url, too_large)
                if frame:
                    yield _decode(frame, url)
            if len(pending) > self._max_frame:
                raise _bad_response(url, too_large)
        if pending.strip():
            yield _decode(pending, url)
