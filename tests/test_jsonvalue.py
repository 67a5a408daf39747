"""Reading a JSON value out of growing generated text (``jsonvalue``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastchat_api.jsonvalue import ValueEnd, parse


def end_as_it_grows(text: str, step: int = 1) -> int | None:
    """Where ``ValueEnd`` says the value ends, fed ``text`` a few characters at a time."""
    end = ValueEnd()
    for stop in range(step, len(text) + step, step):
        if end.feed(text[:stop]) is not None:
            return end.end
    return end.finish(text)


@pytest.mark.parametrize(("text", "value"), [
    ('{"a": 1} and then more', '{"a": 1}'),
    ('  [1, [2, {"b": "]}"}]]\n\nDone', '  [1, [2, {"b": "]}"}]]'),
    ('{"q": "say \\"}\\" please", "e": "\\\\"} tail', '{"q": "say \\"}\\" please", "e": "\\\\"}'),
    ('"just a string" yes', '"just a string"'),
    ("42 is the answer", "42"),
    ("-1.5e3", "-1.5e3"),
    ("true", "true"),
    ('{"emoji": "👋"}x', '{"emoji": "👋"}'),
])
@pytest.mark.parametrize("step", [1, 3, 100])
def test_the_first_value_ends_where_it_closes(text, value, step):
    assert text[: end_as_it_grows(text, step)] == value


@pytest.mark.parametrize("text", ['{"a": [1, 2}', '[{"a": 1]'])
def test_a_bracket_closed_by_the_wrong_one_is_broken_at_once(text):
    end = ValueEnd()
    assert end.feed(text) is None and end.broken and end.done


def test_an_unfinished_value_has_no_end():
    end = ValueEnd()
    assert end.feed('{"a": "b') is None and not end.done
    assert end.finish('{"a": "b') is None


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=20,
), st.text(alphabet=" \n}]x,", max_size=5), st.integers(min_value=1, max_value=7))
def test_any_json_value_is_found_whole_however_the_text_grows(value, tail, step):
    text = json.dumps(value, ensure_ascii=False)
    scalar = not text.startswith(("{", "[", '"'))
    written = text + (" " + tail if scalar else tail)
    end = end_as_it_grows(written, step)
    assert written[:end] == text
    assert parse(written[:end]).value == value


@pytest.mark.parametrize(("text", "short"), [
    ('{"a": [1, 2', True),
    ('{"a": "unfinished', True),
    ("{not json}", False),
    ('{"a": 1,}', False),
    ('{"a": NaN}', False),
])
def test_parse_says_why_and_whether_the_text_was_only_cut_short(text, short):
    parsed = parse(text)
    assert parsed.error and parsed.cut_short is short


def test_a_value_nested_past_the_parsers_depth_is_an_error_not_an_exception():
    parsed = parse("[" * 5000 + "]" * 5000)
    assert parsed.value is None and parsed.error == "the value is nested too deeply to read"
