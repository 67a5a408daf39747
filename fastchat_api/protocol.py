"""Validated request bodies as typed objects: what the pipelines read.

``schemas`` checks a body and builds one of these; a field a body leaves out, or sends as null,
takes FastChat's default (``fastchat/protocol/openai_api_protocol.py``), since FastChat crashes
on some explicit nulls. Fields that are accepted but have no effect here are not kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict


class ImageURL(TypedDict):
    url: str


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class FunctionCall(TypedDict):
    """A past call, as OpenAI writes it: ``arguments`` is a JSON string."""

    name: str
    arguments: str


class ToolCall(TypedDict):
    """One of an assistant message's ``tool_calls``."""

    id: str
    type: Literal["function"]
    function: FunctionCall


class ChatMessage(TypedDict):
    """One chat message as ``schemas`` checks it: other keys pass unread; content may be null
    or absent on assistant messages only. Tool history (``schemas`` checks it): an assistant
    message's ``tool_calls`` (or legacy ``function_call``), a ``tool`` message's
    ``tool_call_id``, a legacy ``function`` message's ``name``."""

    role: str
    content: NotRequired[str | list[ContentPart] | None]
    tool_calls: NotRequired[list[ToolCall]]
    function_call: NotRequired[FunctionCall]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


class History(list[ChatMessage]):
    """Messages that hold tool history (calls or results): rendered through a tool format
    even when the request offers no tools."""

    __slots__ = ()


Messages = str | list[ChatMessage]  # OpenAI's messages, or FastChat's ready prompt string


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``response_format``'s JSON modes (``{"type": "text"}`` loads as no format at all):
    ``json_object``, or ``json_schema`` with the schema's ``name``, the (checked) JSON Schema
    ``schema`` (``{}``, any JSON value, when the client sent none) and ``strict``."""

    type: Literal["json_object", "json_schema"]
    name: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Function:
    """A function the model may call (``tools[i].function``, or a legacy ``functions[i]``):
    ``parameters`` is a checked JSON Schema of its arguments (``{}``: any object)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool = False


Choice = Literal["none", "auto", "required", "named"]


@dataclass(frozen=True, slots=True)
class Tools:
    """What a chat asks of tools: the ``functions`` it offers, ``tool_choice`` (``named``:
    the function ``name`` must be called), ``parallel_tool_calls`` (false: one call at most),
    and whether it came in the legacy ``functions``/``function_call`` form (answered with
    ``message.function_call``, one call). Also a chat with tool history and no tools
    (``choice`` ``none``)."""

    functions: tuple[Function, ...] = ()
    choice: Choice = "none"
    name: str | None = None
    parallel: bool = True
    legacy: bool = False


@dataclass(slots=True, kw_only=True)
class GenerationRequest:
    """The sampling fields every text-generation route shares."""

    model: str
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = -1
    n: int = 1
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float | None = None  # FastChat's HF worker honours it
    user: str | None = None  # the client's end user, logged

    @property
    def requested_tokens(self) -> int | None:
        """The most tokens the client asked to generate, if it said."""
        return self.max_tokens


@dataclass(slots=True, kw_only=True)
class ChatRequest(GenerationRequest):
    """``POST /v1/chat/completions``."""

    messages: Messages
    max_completion_tokens: int | None = None
    response_format: ResponseFormat | None = None  # None: free text
    logprobs: bool = False
    top_logprobs: int = 0  # alternatives per token, 0-20, with ``logprobs``
    tools: Tools | None = None  # None: no tools offered and no tool history

    @property
    def requested_tokens(self) -> int | None:
        """OpenAI's newer ``max_completion_tokens`` wins over ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens


@dataclass(slots=True, kw_only=True)
class APIChatRequest(ChatRequest):
    """FastChat's ``POST /api/v1/chat/completions``: ``repetition_penalty`` always sent."""

    repetition_penalty: float | None = 1.0


@dataclass(slots=True, kw_only=True)
class CompletionRequest(GenerationRequest):
    """``POST /v1/completions``: ``prompt`` is always a list (a string loads as one item)."""

    prompt: list[str]
    max_tokens: int | None = 16
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    use_beam_search: bool = False


@dataclass(slots=True, kw_only=True)
class EmbeddingsRequest:
    """``POST /v1/embeddings``: ``input`` is always a list; the model may come from the path."""

    input: list[str]
    model: str | None = None
    encoding_format: str | None = None  # "float" (default) or "base64"
    user: str | None = None  # the client's end user, logged


@dataclass(slots=True, kw_only=True)
class TokenCheckItem:
    """One prompt of FastChat's ``/api/v1/token_check``."""

    model: str
    prompt: str
    max_tokens: int


@dataclass(slots=True, kw_only=True)
class TokenCheckRequest:
    prompts: list[TokenCheckItem] = field(default_factory=list)
