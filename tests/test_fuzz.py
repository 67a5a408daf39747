"""Property-based fuzzing of every route against the scripted stand-in: whatever the body, the
headers or the method, the answer comes in time, is never a 5xx, and every error is in the
gateway's format (OpenAI's envelope plus FastChat's flat fields, see ``errors.py``).

Bodies are mostly valid, or valid but for one field (at or past a limit, any JSON value, an
unknown name, or a required field left out), so that they get past the JSON parser into
validation, planning and generation; the rest are broken JSON, invalid UTF-8 and deep nesting.
About 3,500 requests in all under the "ci" Hypothesis profile (``CI=true``), in well under a
minute; a tenth of that under the local "dev" profile (see ``conftest.py``;
``HYPOTHESIS_PROFILE=ci`` runs the full fuzz locally).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastchat_api import schemas
from fastchat_api.app import create_app
from fastchat_api.config import build_config

from .support import sse_events

ROUTES = sorted(
    {(route.method, route.resource.canonical)
     for route in create_app(build_config(None)).router.routes() if route.resource is not None}
)
ANSWER_TIMEOUT = 10.0

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def examples(full: int) -> int:
    """``full`` examples under the "ci" profile; the same share of the loaded profile's count."""
    return max(1, full * settings.default.max_examples // settings.get_profile("ci").max_examples)

# -- values ------------------------------------------------------------------------------------

EDGE_NUMBERS = st.sampled_from([
    -1, 0, 1, 2, 0.5, -0.0, 1.5, 16, 127, 128, 129, schemas.MAX_TOKENS, schemas.MAX_TOKENS + 1,
    2**31, 2**63, 2**64, 10**30, 1e308, -1e308, 5e-324, 2048, 2049,
])
TEXT = st.text(max_size=12) | st.sampled_from(["", " ", "\x00", "é🙂", "\ud7ff", "</s>", "USER:"])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | EDGE_NUMBERS | TEXT)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)

# Values each field takes in a valid request, and values at or past its limits.
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries(
        {"url": st.sampled_from(["data:image/png;base64,AA==", "https://example.com/a.png"])})}),
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]),
     "content": TEXT | st.lists(PART, min_size=1, max_size=3)},
    optional={"name": TEXT},
)
# Tool calling: definitions, and the history of past calls and their results.
TOOL = st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
    {"name": st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)},
    optional={"description": TEXT, "strict": st.booleans(), "parameters": st.sampled_from([
        {}, {"type": "object"},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}])})})
CALL = st.fixed_dictionaries({"id": TEXT.filter(bool), "type": st.just("function"), "function": st.fixed_dictionaries(
    {"name": TEXT, "arguments": TEXT | st.just('{"a": "x"}')})})
HISTORY = st.one_of(
    st.fixed_dictionaries({"role": st.just("assistant"), "content": st.none() | TEXT,
                           "tool_calls": st.lists(CALL, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": TEXT.filter(bool), "content": TEXT}),
)
TEXTS = TEXT | st.lists(TEXT, min_size=1, max_size=4)
PENALTY = st.floats(min_value=-2, max_value=2) | st.none()
TOKENS = st.integers(min_value=1, max_value=64) | st.none()

SAMPLING = {
    "temperature": st.floats(min_value=0, max_value=2) | st.none(),
    "top_p": st.floats(min_value=0, max_value=1) | st.none(),
    "top_k": st.sampled_from([None, -1, 1, 40]), "n": st.integers(min_value=1, max_value=3) | st.none(),
    "max_tokens": TOKENS, "stop": st.none() | TEXT | st.lists(TEXT, max_size=4),
    "stream": st.booleans() | st.none(),
    "stream_options": st.sampled_from([None, {}, {"include_usage": True}, {"include_usage": False}]),
    "presence_penalty": PENALTY, "frequency_penalty": PENALTY, "repetition_penalty": PENALTY,
    "user": TEXT, "seed": st.none(), "logit_bias": st.just({}), "metadata": ANY_JSON,
    "store": st.just(False), "service_tier": st.just("auto"),
}
CHAT = {
    "max_completion_tokens": TOKENS, "tools": st.lists(TOOL, max_size=3),
    "tool_choice": st.sampled_from(["none", "auto"]),
    "parallel_tool_calls": st.booleans(), "response_format": st.just({"type": "text"}),
    "logprobs": st.just(False), "top_logprobs": st.just(0), "modalities": st.just(["text"]),
}
COMPLETION = {
    "echo": st.booleans() | st.none(), "logprobs": st.sampled_from([None, 0, 1, 5]),
    "best_of": st.sampled_from([None, 1, 2]), "use_beam_search": st.booleans(),
}
EMBEDDING = {"user": TEXT, "encoding_format": st.sampled_from([None, "float", "base64"])}
EDGES = {
    "model": ["", "x" * 1025, "other-model"],
    "messages": [[], "x", [{"role": "bot", "content": "Hi"}], [{"role": "user", "content": None}],
                 [{"role": "user", "content": [{"type": "audio"}]}],
                 [{"role": "user", "content": "Hi"}] * 2049, [{"role": "x" * 1025, "content": "Hi"}]],
    "prompt": [[], ["x"] * 2049, [[1, 2]], [1, 2]], "input": [[], ["x"] * 2049, [[1, 2]]],
    "n": [0, 128, 129, 10**30, 1.5], "best_of": [0, 129],
    "max_tokens": [0, -1, schemas.MAX_TOKENS, schemas.MAX_TOKENS + 1, 1e308],
    "max_completion_tokens": [0, -1, schemas.MAX_TOKENS + 1],
    "temperature": [-1, 3, 1e308], "top_p": [2, -0.5], "top_k": [0, -2, 2**64],
    "presence_penalty": [1e308, -1e308], "stop": [["s"] * 64, ["s"] * 65, "x" * 1025, [""]],
    "seed": [1], "logit_bias": [{"1": 2}], "store": [True], "service_tier": ["flex"],
    "tools": [[{"type": "function"}]],
    # JSON modes the stand-in, which writes no JSON, would rightly answer with a 502 are left
    # to test_structured.py; here the ones refused before any generation.
    "response_format": [{"type": "yaml"}, {"type": "json_schema"},
                        {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "bogus"}}}],
    "logprobs": [True, -1, 6], "top_logprobs": [2, 21, -1], "modalities": [["audio"]],
    "encoding_format": ["hex"], "dimensions": [8], "suffix": ["s"],
}
UNKNOWN = st.sampled_from(["functions", "prediction", "audio", "foo"]) | TEXT


def body(required: dict[str, st.SearchStrategy], optional: dict) -> st.SearchStrategy:
    """A valid JSON object; or one with a field at or past a limit, or set to any JSON value
    (an unknown field too), or without a required field."""
    typed = st.fixed_dictionaries(required, optional=optional)
    names = sorted(required) + sorted(optional)
    edges = [{name: value} for name in names for value in EDGES.get(name, ())]
    at_edge = st.builds(dict.__or__, typed, st.sampled_from(edges)) if edges else typed
    odd = st.builds(lambda obj, name, value: obj | {name: value},
                    typed, st.sampled_from(names) | UNKNOWN, ANY_JSON)
    missing = st.builds(lambda obj, name: {k: v for k, v in obj.items() if k != name},
                        typed, st.sampled_from(sorted(required)))
    return typed | at_edge | odd | missing


MODEL = st.just("fake-model")
CHAT_BODY = body({"model": MODEL, "messages": st.lists(MESSAGE | HISTORY, min_size=1, max_size=5) | TEXT},
                 SAMPLING | CHAT)
BODIES = {
    "/v1/chat/completions": CHAT_BODY,
    "/api/v1/chat/completions": CHAT_BODY,
    "/v1/completions": body({"model": MODEL, "prompt": TEXTS}, SAMPLING | COMPLETION),
    "/v1/embeddings": body({"model": MODEL, "input": TEXTS}, EMBEDDING),
    "/v1/engines/{model_name}/embeddings": body({"input": TEXTS}, EMBEDDING),
    "/api/v1/token_check": body({"prompts": st.lists(
        body({"model": MODEL, "prompt": TEXT, "max_tokens": st.integers(-5, 5000)}, {}), max_size=3)}, {}),
}

DEEP = st.integers(min_value=500, max_value=1200).map(lambda depth: b"[" * depth + b"]" * depth)
BROKEN = st.one_of(
    st.binary(max_size=64),
    DEEP,
    DEEP.map(lambda nested: b'{"model": "fake-model", "messages": ' + nested + b"}"),
    st.sampled_from([
        b"", b"null", b"[]", b'"x"', b"{", b'{"model": NaN}', b'{"model": "fake-model", "n": Infinity}',
        b'{"model": "fake-\xff\xfe", "messages": "x"}', b'{"model": "fake-model", "messages": "\\ud800"}',
        b'{"model": "fake-model", "messages": "\xed\xa0\x80"}', b'{"a": 1e400}',
        b'{"model": "fake-model", "prompt": "p", "n": 123456789012345678901234567890}',
    ]),
)

# -- headers -----------------------------------------------------------------------------------

HEADER_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/vnd.api+json", "application/octet-stream", "*/*", ";;;", "application/json;=",
]) | HEADER_TEXT
HEADERS = st.fixed_dictionaries({}, optional={
    "Content-Type": CONTENT_TYPES,
    "Authorization": st.sampled_from(["Bearer ", "Bearer x", "Basic Zm9v", "bearer  "]) | HEADER_TEXT,
    "X-Request-Id": HEADER_TEXT,
    "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "zstd", "identity", "bogus"]),
    "Accept-Encoding": st.sampled_from(["gzip", "br", "*", "identity;q=0"]),
    "Origin": st.sampled_from(["http://evil.example", "null"]) | HEADER_TEXT,
    "Access-Control-Request-Method": st.sampled_from(["POST", "GET", "DELETE", "X"]),
    "Accept": st.sampled_from(["text/event-stream", "application/json", "*/*"]),
})

# -- requests ----------------------------------------------------------------------------------


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes | None, dict[str, str]]:
    """(method, path, body, headers) for one of the app's routes, or a method or path it has not."""
    method, pattern = draw(st.sampled_from(ROUTES))
    method = draw(st.just(method) | st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    path = pattern.replace("{model}", quote(draw(MODEL | TEXT), safe=""))
    path = path.replace("{model_name}", quote(draw(st.just("fake-model") | TEXT), safe=""))
    path = draw(st.just(path) | st.sampled_from([path + "/", path + "?model_name=fake-model", "/v2" + path]))
    headers = draw(HEADERS)
    if method == "HEAD":  # aiohttp's parser-level 400 would carry a body, which HEAD forbids
        headers.pop("Content-Encoding", None)
    if method in ("GET", "HEAD", "OPTIONS"):
        return method, path, None, headers
    strategy = BODIES.get(pattern.removesuffix("/"), ANY_JSON)  # a route's slash form as the route
    data = draw(strategy.map(lambda obj: json.dumps(obj, allow_nan=True).encode()) | BROKEN)
    return method, path, data, headers


def assert_error_format(body: dict[str, Any]) -> None:
    """OpenAI's envelope (what the official client reads) and FastChat's flat fields."""
    assert body["object"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["code"], int)
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] == body["message"]
    assert isinstance(error["type"], str)
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)


def assert_stream(raw: bytes) -> None:
    """Whole SSE events, [DONE] last; an in-band error in the gateway's format."""
    for data in sse_events(raw):
        if "error" in data:
            assert {"message", "type", "param", "code", "fastchat_code"} <= set(data["error"])


async def send(client, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> None:
    async with asyncio.timeout(ANSWER_TIMEOUT):
        async with client.request(method, path, data=data, headers=headers,
                                  skip_auto_headers=["Content-Type"]) as resp:
            raw = await resp.read()
    assert resp.status < 500, (method, path, data, headers, resp.status, raw[:500])
    if "X-Request-Id" not in resp.headers:
        # aiohttp's HTTP parser refused the request before the app saw it (e.g. a body in a
        # Content-Encoding it cannot decode): its own plain-text 400.
        assert resp.status == 400, (method, path, data, headers, resp.status, raw[:500])
    elif resp.status >= 400 and method != "HEAD":
        assert_error_format(json.loads(raw))
    elif resp.headers.get("Content-Type", "").startswith("text/event-stream"):
        assert_stream(raw)


@pytest.fixture
async def keyed_client(make_client):
    return await make_client(auth={"api_keys": ["sk-fuzz"]}, metrics={"token": "metrics-token"})


@settings(FUZZ, max_examples=examples(1000))
@given(request=requests())
async def test_every_route_answers_in_time_without_5xx_in_the_error_format(client, request):
    await send(client, *request)


@settings(FUZZ, max_examples=examples(400))
@given(request=requests(), key=st.sampled_from(["sk-fuzz", "sk-wrong", "metrics-token"]))
async def test_with_keys_and_metrics_token(keyed_client, request, key):
    method, path, data, headers = request
    await send(keyed_client, method, path, data, {"Authorization": f"Bearer {key}"} | headers)


@settings(FUZZ, max_examples=examples(1000))
@given(data=BODIES["/v1/chat/completions"].map(lambda obj: json.dumps(obj).encode()))
async def test_chat_bodies(client, data):
    await send(client, "POST", "/v1/chat/completions", data, {"Content-Type": "application/json"})


@settings(FUZZ, max_examples=examples(700))
@given(data=BODIES["/v1/completions"].map(lambda obj: json.dumps(obj).encode()))
async def test_completion_bodies(client, data):
    await send(client, "POST", "/v1/completions", data, {"Content-Type": "application/json"})


@settings(FUZZ, max_examples=examples(400))
@given(data=BODIES["/v1/embeddings"].map(lambda obj: json.dumps(obj).encode()))
async def test_embedding_bodies(client, data):
    await send(client, "POST", "/v1/embeddings", data, {"Content-Type": "application/json"})


def test_every_route_is_fuzzed():
    """The request strategy draws from the app's own routes, so none can be left out; this
    guards the body strategies (every POST route has a near-valid one)."""
    posts = {pattern.removesuffix("/") for method, pattern in ROUTES if method == "POST"}
    assert posts == set(BODIES)
