"""The one skeleton of every OpenAI stream this gateway sends, chat and completions alike.

Every choice's first frame first (so an early failure is still an HTTP status), then the 200
and its SSE headers, an optional prelude (chat's role deltas), each choice's new text (and the
tokens it completes) as it comes, the usage chunk when the client asked for it, and ``[DONE]``;
events ready at the same moment are written together (``streaming.relay``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from aiohttp import web

from .. import metrics
from ..record import Usage, record_of
from ..streaming import DONE, Chunk, Frames, event, first_frames, open_stream, relay
from ..upstream import Frame


async def stream_choices(
    request: web.Request,
    streams: Sequence[Frames],
    head: dict[str, Any],
    chunk: Chunk,
    usage: Callable[[list[Frame]], Usage],
    *,
    include_usage: bool,
    prelude: bytes = b"",
    headers: Callable[[list[Frame]], Mapping[str, str]] | None = None,
) -> web.StreamResponse:
    """Relay ``streams`` (one per choice, in choice order) as one SSE response.

    ``chunk`` renders what one choice's chunk carries (``streaming.Delta``: its new text and
    the tokens that text completes); ``usage`` totals the choices' last frames, which
    are counted (metrics, access log) whether or not the client asked to see them;
    ``headers`` adds response headers told by the choices' first frames.
    """
    firsts, ready = await first_frames(streams)
    response = await open_stream(request, headers(firsts) if headers else None)
    lasts, held = await relay(response, ready, chunk, prelude)
    totals = metrics.record_usage(record_of(request), usage(lasts))
    if include_usage:
        held += event(head | {"choices": [], "usage": totals})
    await response.write(held + DONE)
    return response
