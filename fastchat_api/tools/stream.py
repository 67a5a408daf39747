"""A tool answer's frames on their way to the client.

Under ``auto`` the content streams as it comes, but never the start of a call: each frame's text
is cut where a call may begin (``Format.hold``), so a marker is held back until it is decided,
as stop strings are; the last frame is read for calls (``ToolGuide.answer``). Under ``required``
or a named function the whole text is the call: it is generated (and generated again while it
is not usable) before anything goes out, so a failure is still an HTTP status.
"""

from __future__ import annotations

from typing import Callable

from .. import errors, guided, metrics
from ..streaming import Frames
from ..upstream import Frame
from .guide import ToolGuide


def _content(frame: Frame, text: str) -> Frame:
    """``frame`` carrying ``text`` as its text, without log-probabilities (they index the
    worker's text, not the content)."""
    cut = frame | {"text": text}
    cut.pop("logprobs", None)
    return cut


async def held(frames: Frames, guide: ToolGuide, model: str) -> Frames:
    """Frames whose text is the content so far; the last one answered (``ToolGuide.answer``)."""
    last: Frame | None = None
    try:
        async for frame in frames:
            last = frame
            if frame.get("finish_reason") is not None:
                break
            text = frame.get("text", "")
            yield _content(frame, text[: guide.form.hold(text)])
    finally:
        await frames.aclose()
    if last is not None:
        yield _answered(guide, last if last.get("finish_reason") else last | {"finish_reason": "stop"}, model)


def _answered(guide: ToolGuide, frame: Frame, model: str) -> Frame:
    try:
        answer = guide.answer(frame)
    except errors.APIError:
        metrics.guided_attempt(model, guide.kind, guided.FAILED)
        raise
    metrics.guided_attempt(model, guide.kind, guided.VALID)
    return _content(answer, answer.get("text", ""))


async def whole(generate: Callable[[], Frames], guide: ToolGuide, attempts: int, model: str) -> Frames:
    """One frame: the answer of the first usable generation (``guided.until_valid``)."""
    yield guide.answer(await guided.until_valid(generate, guide, attempts, model))
