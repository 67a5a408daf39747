"""Typed keys for application and request state, in one place so every module agrees."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .config import Config

if TYPE_CHECKING:
    from .keys import KeyStore
    from .shutdown import Draining
    from .upstream import Upstream

config_key = web.AppKey("config_key", Config)
upstream_key: web.AppKey["Upstream"] = web.AppKey("upstream_key")
keys_key: web.AppKey["KeyStore"] = web.AppKey("keys_key")
draining_key: web.AppKey["Draining"] = web.AppKey("draining_key")
openapi_key = web.AppKey("openapi_key", bytes)
request_id_key = web.RequestKey("request_id_key", str)
api_key_id_key = web.RequestKey("api_key_id_key", str)
stream_key = web.RequestKey("stream_key", web.StreamResponse)
# Per-request facts for metrics and the access log, set by handlers (see metrics.py).
model_key = web.RequestKey("model_key", str)
usage_key = web.RequestKey("usage_key", dict)
started_key = web.RequestKey("started_key", float)
first_token_key = web.RequestKey("first_token_key", float)
