"""One chat's tools as a ``guided.Guide``: the prompt in the model's tool format, and the
answer read back into OpenAI's tool calls, checked.

What is checked: a call names an offered function (the named one under a named
``tool_choice``) and its arguments are valid against the function's ``parameters`` (the
``jsonschema`` library). Under ``required``, a named function, or a ``strict`` function that
was called, a text without a usable call is generated again (``guided.until_valid``), up to
``tools.max_attempts`` times, then the request fails (a 502, ``invalid_model_output``). Under
``auto`` a text that is not a well-formed call of an offered function is the answer's content,
and a non-strict function's call is answered even when its arguments miss the schema
(OpenAI's non-strict calls promise no more). ``parallel_tool_calls: false`` keeps the first call.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from .. import errors
from ..conversation import Prompt, Template
from ..guided import Guide, Verdict
from ..jsonvalue import ValueEnd
from ..protocol import Function, Messages, Tools
from ..structured import opening
from ..upstream import Frame
from .base import Format
from .calls import Call, arguments_text, call_id
from .history import rewritten

KIND = "tools"  # the guided-attempts metric's kind


class Decision(NamedTuple):
    """A finished text read under the request's rules: the content, the usable calls, and
    why the calls are not usable (``problem``), with whether they must be (``required``)."""

    content: str
    calls: list[Call]
    problem: str = ""
    required: bool = False


class _Never:
    """An answer that may hold several calls, or none, has no early end: the stream runs to
    the model's own stop."""

    done = False

    def feed(self, text: str) -> int | None:
        return None


class FirstCall:
    """Where the first call's JSON ends in a growing text (``guided.End``)."""

    __slots__ = ("form", "_at", "_value")

    def __init__(self, form: Format) -> None:
        self.form = form
        self._at = 0
        self._value: ValueEnd | None = None

    @property
    def broken(self) -> bool:
        """The call's JSON can no longer be JSON."""
        return self._value is not None and self._value.broken

    def feed(self, text: str) -> int | None:
        if self._value is None:
            start = self.form.call_start(text)
            if start is None:
                return None
            self._at, self._value = start, ValueEnd()
        end = self._value.feed(text[self._at:])
        return None if end is None else self._at + end


class Calls:
    """Where an answer that is all calls ends (``guided.End``): after its first call when it
    is ``one``, else after the last call of a row (``Format.after_call``), so that the worker
    is hung up on there, as for JSON modes, instead of being left to write on to ``max_tokens``."""

    __slots__ = ("form", "one", "_base", "_call")

    def __init__(self, form: Format, one: bool) -> None:
        self.form, self.one = form, one
        self._base = 0  # where the call being read is looked for
        self._call = FirstCall(form)

    @property
    def done(self) -> bool:
        return self._call.broken

    def feed(self, text: str) -> int | None:
        while True:
            end = self._call.feed(text[self._base:])
            if end is None:
                return None
            end += self._base
            if self.one:
                return end
            step, at = self.form.after_call(text, end)
            if step != "more":
                return at if step == "stop" else None
            self._base, self._call = at, FirstCall(self.form)


class ToolGuide:
    """One request's tools in one format (``kind``, ``opening``, ``instruction`` as
    ``guided.Guide`` says)."""

    kind = KIND

    def __init__(self, form: Format, tools: Tools, instruction: str) -> None:
        self.form, self.tools = form, tools
        self.forced = tools.choice in ("required", "named")
        self.offered = tools.functions if tools.choice != "none" else ()
        self.opening = _opening(form, tools) if self.forced else ""
        self.instruction = instruction.replace("{tools}", form.definitions(self.offered)) if self.offered else ""
        self._validators = {function.name: (function, _validator(function)) for function in self.offered}

    def end(self) -> Calls | _Never:
        """Where a forced answer's calls end (one call under a named function, or without
        parallel calls); none under ``auto``, where text may be all there is."""
        if not self.forced:
            return _Never()
        return Calls(self.form, self.tools.choice == "named" or not self.tools.parallel)

    def render(self, template: Template, messages: Messages, other: Guide | None = None) -> Prompt:
        """The chat's prompt: the tools, the history and the opening in the format's shape;
        with no tools offered, the ``other`` guide's instruction and opening (a JSON
        ``response_format`` beside tool history). ``messages`` is a list: a request with tools
        or tool history and a ready prompt string is refused (``tools.request.tools_of``)."""
        assert not isinstance(messages, str), "tools_of refuses tools beside a ready prompt string"
        instruction, prefill = self.instruction, self.opening
        if not self.offered and other is not None:
            instruction, prefill = other.instruction, other.opening
        return self.form.render(template, rewritten(messages, self.form), self.offered, instruction, prefill)

    def decide(self, text: str) -> Decision:
        """``text`` (the opening and the worker's text) read as the request's rules say."""
        if not self.offered:
            return Decision(text, [])
        split = self.form.split(text)
        calls = split.calls if self.tools.parallel else split.calls[:1]
        if not calls:
            return Decision(text, [], "the output holds no well-formed call", self.forced)
        for call in calls:
            problem, strict = self._problem(call)
            if problem:
                if not self.forced and not strict and call.name in self._validators:
                    continue  # a non-strict call under auto: answered as written
                if not self.forced and not strict:
                    return Decision(text, [], problem)  # not a call of ours: content
                return Decision(text, [], problem, True)
        return Decision(split.content, calls)

    def _problem(self, call: Call) -> tuple[str, bool]:
        """Why ``call`` is not usable ("" if it is), and whether its function is strict."""
        if self.tools.choice == "named" and call.name != self.tools.name:
            return f"it called {call.name!r}, not {self.tools.name!r}", True
        found = self._validators.get(call.name)
        if found is None:
            return f"it called {call.name!r}, which is not an offered function", False
        function, validator = found
        error = best_match(validator.iter_errors(call.arguments))
        if error is None:
            return "", function.strict
        where = f" at {error.json_path}" if error.path else ""
        return f"the arguments of {call.name!r} do not match its parameters{where}: {error.message}", function.strict

    def judge(self, text: str) -> Verdict:
        decision = self.decide(text)
        return Verdict(not decision.required, not decision.required, decision.problem)

    def failure(self, attempts: int, verdict: Verdict) -> errors.APIError:
        wanted = f"a call of {self.tools.name!r}" if self.tools.choice == "named" else "a usable tool call"
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        return errors.invalid_output(
            f"The model did not produce {wanted} in {tries}; the last: {verdict.reason}. "
            "Try again, or describe the function more plainly."
        )

    def answer(self, frame: Frame) -> Frame:
        """``frame`` (a generation's last) as the answer: its text is the content, and the
        calls, with new ids, are under ``tool_calls`` (OpenAI's shape), the finish reason
        ``tool_calls`` (``function_call`` in the legacy form). A failure raised when the
        calls must be usable and are not."""
        decision = self.decide(self.opening + frame.get("text", ""))
        if decision.required:
            raise self.failure(1, Verdict(False, False, decision.problem))
        if not decision.calls:
            return frame
        calls = [{"id": call_id(), "type": "function",
                  "function": {"name": call.name, "arguments": arguments_text(call.arguments)}}
                 for call in decision.calls]
        return frame | {"text": decision.content, "tool_calls": calls,
                        "finish_reason": "function_call" if self.tools.legacy else "tool_calls"}


def _opening(form: Format, tools: Tools) -> str:
    """A forced call's opening: naming the function when it is known (the named one, or under
    ``required`` the only one offered: SmolLM2-135M, left to name it, wrote ``"Paris"``), then
    as much of the arguments as their schema fixes (``structured.opening``: ``{"city": "``)."""
    name = tools.name
    if tools.choice == "required" and len(tools.functions) == 1:
        name = tools.functions[0].name
    function = next((function for function in tools.functions if function.name == name), None)
    return form.opening(name) + (opening(function.parameters) if function else "")


def _validator(function: Function) -> Validator:
    schema = function.parameters or {"type": "object"}
    cls: Any = validators.validator_for(schema, default=Draft202012Validator)
    validator: Validator = cls(schema)
    return validator
