"""Typed keys for application state, in one place so every module agrees.

Per-request state is one record under ``record.record_key``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .config import Config

if TYPE_CHECKING:
    from .bodies import BodyBudget
    from .keys import KeyStore
    from .limits import Limiter
    from .shutdown import Draining
    from .upstream import Upstream

config_key = web.AppKey("config_key", Config)
upstream_key: web.AppKey["Upstream"] = web.AppKey("upstream_key")
keys_key: web.AppKey["KeyStore"] = web.AppKey("keys_key")
limiter_key: web.AppKey["Limiter"] = web.AppKey("limiter_key")
body_budget_key: web.AppKey["BodyBudget"] = web.AppKey("body_budget_key")
draining_key: web.AppKey["Draining"] = web.AppKey("draining_key")
openapi_key = web.AppKey("openapi_key", bytes)
