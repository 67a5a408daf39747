"""Guided generation: output of a shape FastChat's workers cannot constrain (JSON for
structured outputs; tool calls), obtained from any worker and checked.

A :class:`Guide` says what the shape is: an instruction for the system turn, the opening the
assistant turn is prefilled with (``Template.render``'s ``prefill``), where the shape ends in
the text (a :class:`~fastchat_api.jsonvalue.ValueEnd`) and whether a finished text conforms
(:class:`Verdict`). Here the stream is watched and closed as soon as the shape is complete
(:func:`shaped`: FastChat's workers stop generating when their client goes), a whole answer is
generated again until it conforms, at most ``attempts`` times (:func:`until_valid`), and a
stream is checked at its end (:func:`checked`).

The opening is the text of the answer's start, not the worker's: frames here carry only the
worker's text (so that its log-probabilities still index it), and the pipeline puts the
opening before it.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, NamedTuple, Protocol

from . import errors, metrics
from .streaming import Frames, tokens_before
from .upstream import Frame

# Outcomes of one generation, as the metric counts them.
VALID = "valid"  # conforms
RETRIED = "retried"  # did not, and is generated again
ACCEPTED = "accepted"  # did not conform but is acceptable, and no attempt did better
FAILED = "failed"  # did not, and the request ends in an error


class Verdict(NamedTuple):
    """Whether a finished text conforms (``ok``), may be answered when no attempt conforms
    (``acceptable``), and if not, why (``reason``, for the client)."""

    ok: bool
    acceptable: bool
    reason: str = ""


class End(Protocol):
    """Where the shape ends in a growing text (a ``jsonvalue.ValueEnd``)."""

    @property
    def done(self) -> bool: ...
    def feed(self, text: str) -> int | None: ...


class Guide(Protocol):
    """One request's shape: ``kind`` (a metric label), ``opening``, ``instruction``."""

    kind: str
    opening: str
    instruction: str

    def end(self) -> End:
        """A fresh finder of the shape's end, for one generation."""
        ...

    def judge(self, text: str) -> Verdict:
        """Whether ``text`` (the opening and the worker's text) conforms."""
        ...

    def failure(self, attempts: int, verdict: Verdict) -> errors.APIError:
        """The error once ``attempts`` generations did not conform (the last said ``verdict``)."""
        ...


def _cut(frame: Frame, end: int) -> Frame:
    """``frame`` ending at character ``end`` of its text: a stop, with the tokens that make up
    the text kept (``streaming.tokens_before``)."""
    cut = frame | {"text": frame.get("text", "")[:end], "finish_reason": "stop"}
    logprobs = frame.get("logprobs")
    if isinstance(logprobs, dict):
        count = tokens_before(frame, end)
        cut["logprobs"] = {key: value[:count] if isinstance(value, list) else value
                           for key, value in logprobs.items()}
    return cut


async def shaped(frames: Frames, guide: Guide) -> Frames:
    """The worker's frames until the shape is complete, the last one cut there, with a finish
    reason (``stop`` when the worker gave none); the worker's stream is closed then, and
    whenever this generator is. A trailing U+FFFD (half a character) is not read yet."""
    end, skip, last = guide.end(), len(guide.opening), None
    try:
        async for frame in frames:
            last = frame
            text = frame.get("text", "")
            stop = end.feed(guide.opening + text.rstrip("\ufffd"))
            if stop is not None:
                yield _cut(frame, stop - skip)
                return
            if end.done or frame.get("finish_reason") is not None:
                break
            yield frame
    finally:
        await frames.aclose()
    if last is not None:
        yield last if last.get("finish_reason") is not None else last | {"finish_reason": "stop"}


def _verdict(guide: Guide, frame: Frame) -> Verdict:
    verdict = guide.judge(guide.opening + frame.get("text", ""))
    if not verdict.ok and frame.get("finish_reason") == "length":
        return verdict._replace(reason=f"{verdict.reason} (the output reached max_tokens)")
    return verdict


async def checked(frames: Frames, guide: Guide, model: str) -> Frames:
    """:func:`shaped` frames whose last one is judged before it is passed on: a text that is
    not acceptable raises the guide's failure instead (after one attempt)."""
    async for frame in shaped(frames, guide):
        if frame.get("finish_reason") is not None:
            verdict = _verdict(guide, frame)
            outcome = VALID if verdict.ok else ACCEPTED if verdict.acceptable else FAILED
            metrics.guided_attempt(model, guide.kind, outcome)
            if outcome == FAILED:
                raise guide.failure(1, verdict)
        yield frame


async def _last(frames: AsyncIterator[Frame]) -> Frame:
    last: Frame = {}
    async for frame in frames:
        last = frame
    return last


def _spent(frame: Frame) -> int:
    return int((frame.get("usage") or {}).get("completion_tokens") or 0)


async def until_valid(generate: Callable[[], Frames], guide: Guide, attempts: int, model: str) -> Frame:
    """The last frame of the first generation that conforms, out of at most ``attempts``;
    else of the last acceptable one; else the guide's failure is raised. Its usage counts
    the tokens of every attempt."""
    acceptable: Frame | None = None
    spent = 0
    for attempt in range(1, attempts + 1):
        last = await _last(shaped(generate(), guide))
        spent += _spent(last)
        verdict = _verdict(guide, last)
        if verdict.ok:
            metrics.guided_attempt(model, guide.kind, VALID)
            return _spending(last, spent)
        if verdict.acceptable:
            acceptable = last
        final = attempt == attempts
        metrics.guided_attempt(model, guide.kind, RETRIED if not final else
                               ACCEPTED if acceptable is not None else FAILED)
    if acceptable is not None:
        return _spending(acceptable, spent)
    raise guide.failure(attempts, verdict)


def _spending(frame: Frame, completion_tokens: int) -> Frame:
    """``frame`` with its usage's completion tokens (and total) replaced."""
    usage: dict[str, Any] = dict(frame.get("usage") or {})
    if not usage:
        return frame
    usage["completion_tokens"] = completion_tokens
    usage["total_tokens"] = int(usage.get("prompt_tokens") or 0) + completion_tokens
    return frame | {"usage": usage}
