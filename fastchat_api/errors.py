"""Errors as the gateway sends them: OpenAI's envelope, with FastChat's fields kept beside it.

Every error body is ``{"error": {"message", "type", "param", "code"}}`` (what the official
``openai`` client reads) plus FastChat's flat ``{"object": "error", "message", "code"}`` at the top
level, so that clients written against FastChat, which read the numeric ``code``, keep working.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Mapping

from yarl import URL


class ErrorCode(IntEnum):
    """FastChat's numeric error codes (``fastchat/constants.py``)."""

    VALIDATION_TYPE_ERROR = 40001
    INVALID_AUTH_KEY = 40101
    INCORRECT_AUTH_KEY = 40102
    NO_PERMISSION = 40103
    INVALID_MODEL = 40301
    PARAM_OUT_OF_RANGE = 40302
    CONTEXT_OVERFLOW = 40303
    RATE_LIMIT = 42901
    QUOTA_EXCEEDED = 42902
    ENGINE_OVERLOADED = 42903
    INTERNAL_ERROR = 50001
    CUDA_OUT_OF_MEMORY = 50002
    CONTROLLER_NO_WORKER = 50005
    CONTROLLER_WORKER_TIMEOUT = 50006


_TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def redacted(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: what logs and clients may see."""
    parsed = URL(url)
    if parsed.raw_user is None and parsed.raw_password is None:
        return url
    return str(parsed.with_password(None).with_user("***"))


class APIError(Exception):
    """An error the client is meant to read: an HTTP status and both error shapes.

    ``message`` is what the client reads. ``address`` (the controller or worker URL involved,
    credentials masked) is added to it only where the operator allows
    (``upstream.expose_addresses``), and ``detail`` (e.g. a worker's exception text) never is:
    both are for the log, where ``str(error)`` puts them together.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        fastchat_code: int = ErrorCode.VALIDATION_TYPE_ERROR,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
        failed_worker: str | None = None,
        address: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.address = redacted(address) if address else None
        self.detail = detail or None
        super().__init__(self._logged(message))
        # Set when this worker failed in a way another worker of the model may not.
        self.failed_worker = failed_worker
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.fastchat_code = int(fastchat_code)
        self.type = type or _TYPE_BY_STATUS.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        self.headers = dict(headers or {})

    def _logged(self, message: str) -> str:
        """The message with the address and the detail: the text logs get."""
        where = f" [at {self.address}]" if self.address else ""
        return f"{message}{where}: {self.detail}" if self.detail else f"{message}{where}"

    def public_message(self, expose_address: bool = False) -> str:
        """What the client reads: the message, and the address only when ``expose_address``."""
        if expose_address and self.address:
            return f"{self.message} [at {self.address}]"
        return self.message

    def body(self, expose_address: bool = False) -> dict[str, Any]:
        """The JSON body: OpenAI's ``error`` object and FastChat's flat fields."""
        message = self.public_message(expose_address)
        return {
            "object": "error",
            "message": message,
            "code": self.fastchat_code,
            "error": {
                "message": message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            },
        }

    def event(self, expose_address: bool = False) -> dict[str, Any]:
        """The in-band form sent inside an SSE stream after the 200 has gone out."""
        return {"error": self.body(expose_address)["error"] | {"fastchat_code": self.fastchat_code}}


def invalid_request(message: str, param: str | None = None, *, code: str) -> APIError:
    """A 400 for a body that does not parse or does not validate (FastChat's 40001); ``code``
    is one of README's error codes."""
    return APIError(message, param=param, code=code)


def out_of_range(message: str, param: str) -> APIError:
    """A 400 for a parameter outside FastChat's ranges (40302), with FastChat's text."""
    return APIError(
        message, param=param, code="invalid_value", fastchat_code=ErrorCode.PARAM_OUT_OF_RANGE
    )


def model_not_found(message: str) -> APIError:
    """A 404 for a model the controller does not serve (40301)."""
    return APIError(
        message,
        status=404,
        param="model",
        code="model_not_found",
        fastchat_code=ErrorCode.INVALID_MODEL,
    )


def context_overflow(message: str, param: str = "messages") -> APIError:
    """A 400 for a prompt that leaves no room to generate (40303)."""
    return APIError(
        message,
        param=param,
        code="context_length_exceeded",
        fastchat_code=ErrorCode.CONTEXT_OVERFLOW,
    )


def empty_prompt(param: str) -> APIError:
    """A 400 for a prompt, ready prompt string or embedding input in which the model's
    tokenizer reads no token: FastChat's HF worker fails on it with a torch error."""
    return invalid_request(
        f"'{param}' is empty for this model: its tokenizer reads no token in it, so the worker "
        "has nothing to work on. Send some text.",
        param=param,
        code="empty_prompt",
    )


def unavailable(
    message: str,
    retry_after: int | str = 1,
    code: str = "upstream_unavailable",
    fastchat_code: int = ErrorCode.CONTROLLER_NO_WORKER,
    *,
    address: str | None = None,
    detail: str | None = None,
) -> APIError:
    """A 503 with ``Retry-After``: nothing can take the request now, later something may."""
    return APIError(
        message,
        status=503,
        code=code,
        fastchat_code=fastchat_code,
        headers={"Retry-After": str(retry_after)},
        address=address,
        detail=detail,
    )


def upstream_unavailable(message: str) -> APIError:
    """No worker serves the model now."""
    return unavailable(message)


def controller_unreachable(message: str, *, address: str | None = None,
                           detail: str | None = None) -> APIError:
    """The controller cannot be reached and nothing cached can stand in."""
    return unavailable(message, retry_after=5, code="controller_unreachable", address=address,
                       detail=detail)


def not_ready(cause: APIError) -> APIError:
    """``/ready``'s answer when the controller failed it: always a 503 with ``Retry-After``,
    under the same ``code`` the ``/v1`` routes give that failure (one code per fact)."""
    return unavailable(
        f"Not ready: {cause.message}",
        retry_after=cause.headers.get("Retry-After", 1),
        code=cause.code or "upstream_unavailable",
        fastchat_code=cause.fastchat_code,
        address=cause.address,
        detail=cause.detail,
    )


def upstream_failed(
    message: str, fastchat_code: int = ErrorCode.INTERNAL_ERROR, *, failed_worker: str | None = None,
    address: str | None = None, detail: str | None = None,
) -> APIError:
    """A 502 when a worker answered with an error or broke the protocol."""
    return APIError(
        message, status=502, code="upstream_error", fastchat_code=fastchat_code,
        failed_worker=failed_worker, address=address, detail=detail,
    )


def worker_error(code: int, text: str, address: str) -> APIError:
    """A worker's answer carrying FastChat's ``error_code``: the client reads the code, never the
    worker's text (often an exception's, e.g. torch's), which is for the log. Out of GPU memory
    (50002) is a 503 with ``Retry-After`` (memory frees as other requests end), anything else a
    502."""
    try:
        name = f" ({ErrorCode(code).name})"
    except ValueError:
        name = ""
    out_of_memory = code == ErrorCode.CUDA_OUT_OF_MEMORY
    return APIError(
        f"The worker failed with FastChat error code {code}{name}; the gateway logged its "
        "message under this request's X-Request-Id",
        status=503 if out_of_memory else 502,
        code="worker_error",
        fastchat_code=code,
        address=address,
        detail=text,
        headers={"Retry-After": "1"} if out_of_memory else None,
    )


def invalid_output(message: str) -> APIError:
    """A 502 when the model's output is not the shape the request asked for (a JSON
    ``response_format``) after the attempts allowed; the client is told not to retry, since
    the gateway already did."""
    return APIError(
        message, status=502, code="invalid_model_output", fastchat_code=ErrorCode.INTERNAL_ERROR,
        headers={"x-should-retry": "false"},
    )


def upstream_timeout(message: str, *, address: str | None = None) -> APIError:
    """A 504 when a worker or the controller did not answer in time."""
    return APIError(
        message,
        status=504,
        code="upstream_timeout",
        fastchat_code=ErrorCode.CONTROLLER_WORKER_TIMEOUT,
        address=address,
    )


def internal(message: str = "The server had an error while processing your request.") -> APIError:
    """A 500 for a fault of ours; the message never carries a traceback."""
    return APIError(message, status=500, code="internal_error", fastchat_code=ErrorCode.INTERNAL_ERROR)


def shutting_down() -> APIError:
    """A request still running when the shutdown grace period ran out: sent again, it
    reaches a process that is not stopping."""
    return unavailable(
        "The server is shutting down and could not finish this request in time; send it again.",
        code="server_shutting_down",
        fastchat_code=ErrorCode.INTERNAL_ERROR,
    )
