"""gunicorn settings for fastchat_api, derived from the same YAML file the server reads.

    FASTCHAT_API_CONFIG=config/prod.yaml gunicorn -c config/gunicorn.conf.py

Bind address, TLS and the graceful timeout come from the YAML (server.*), so the two ways of
running the gateway cannot drift apart. Environment variables tune the rest:
WEB_CONCURRENCY (processes, default: one per core) and FASTCHAT_API_BIND (overrides the bind).
"""

import os

from fastchat_api.app import CONFIG_ENV
from fastchat_api.config import load_config

_config = load_config(os.environ.get(CONFIG_ENV) or None)

# The zero-argument async factory; it returns an aiohttp AppRunner built from the YAML.
wsgi_app = "fastchat_api.app:app_factory"
worker_class = "aiohttp.GunicornWebWorker"
bind = [os.environ.get("FASTCHAT_API_BIND") or f"{_config.server.host}:{_config.server.port}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)

# In-flight streams get server.shutdown_timeout to finish; gunicorn waits a little longer
# before it kills a worker. systemd's TimeoutStopSec must be above this.
graceful_timeout = int(_config.server.shutdown_timeout) + 5
# The aiohttp worker pings the arbiter every second: this only catches a blocked event loop.
timeout = 30
# Idle client connections (applied by our runner from server.keepalive_timeout; kept equal here).
keepalive = int(_config.server.keepalive_timeout)

if _config.server.ssl:
    keyfile = os.environ["SSL_KEYFILE"]
    certfile = os.environ["SSL_CERTFILE"]

# gunicorn >= 25.1 opens a control socket; under systemd it lives in RuntimeDirectory.
if os.environ.get("RUNTIME_DIRECTORY"):
    control_socket = os.path.join(os.environ["RUNTIME_DIRECTORY"], "gunicorn.ctl")

errorlog = "-"
loglevel = _config.logging.level.lower()
