"""gunicorn settings for fastchat_api, derived from the same YAML file the server reads.

    FASTCHAT_API_CONFIG=config/prod.yaml gunicorn -c config/gunicorn.conf.py

Bind address, TLS and the graceful timeout come from the YAML (server.*), so the two ways of
running the gateway cannot drift apart. Environment variables tune the rest:
WEB_CONCURRENCY (processes, default: one per core), FASTCHAT_API_BIND (overrides the bind) and
PROMETHEUS_MULTIPROC_DIR (where the processes keep their metrics; default: a fresh directory,
in systemd's RuntimeDirectory when there is one).
"""

import atexit
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path


def _remove_directory(path, master_pid):
    """At the master's exit, the metrics directory this file made (an operator's own is left
    alone). ``atexit``, as gunicorn's ``on_exit`` hook is not called when it fails to bind;
    the workers inherit the handler and leave the directory to the master."""
    if os.getpid() == master_pid:
        shutil.rmtree(path, ignore_errors=True)


# Before anything imports prometheus_client: every process then counts in files there, and a
# scrape of any of them adds up all of them.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if not os.environ.get(MULTIPROC_ENV):
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(
        prefix="fastchat-api-metrics-", dir=os.environ.get("RUNTIME_DIRECTORY")
    )
    atexit.register(_remove_directory, os.environ[MULTIPROC_ENV], os.getpid())

from fastchat_api.app import CONFIG_ENV  # noqa: E402  (after the metrics directory is set)
from fastchat_api.config import load_config  # noqa: E402

_config = load_config(os.environ.get(CONFIG_ENV) or None)

# The zero-argument async factory; it returns an aiohttp AppRunner built from the YAML, with
# our access log (logging.access_format), so gunicorn's own access log stays off.
wsgi_app = "fastchat_api.app:app_factory"
# uvloop's event loop when server.uvloop is on (the default) and uvloop is installed.
worker_class = "aiohttp.GunicornWebWorker"
if _config.server.uvloop and importlib.util.find_spec("uvloop"):
    worker_class = "aiohttp.GunicornUVLoopWebWorker"
bind = [os.environ.get("FASTCHAT_API_BIND") or f"{_config.server.host}:{_config.server.port}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)

# In-flight streams get server.shutdown_timeout to finish; gunicorn waits a little longer
# before it kills a worker. systemd's TimeoutStopSec must be above this.
graceful_timeout = int(_config.server.shutdown_timeout) + 5
# The aiohttp worker pings the arbiter every second, however long its streams run: this only
# catches a blocked event loop.
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


def on_starting(server):
    """Counts left by an earlier run would be added to this one's: start from none."""
    for stale in Path(os.environ[MULTIPROC_ENV]).glob("*.db"):
        stale.unlink()


def post_fork(server, worker):
    """Hand the worker the listening sockets themselves rather than gunicorn's wrappers of them.

    uvloop closes a listening socket it was given itself, and then closes the object it was
    handed unless that is a ``socket.socket``: on gunicorn's wrapper that second close failed
    and gunicorn logged "Error while closing socket [Errno 9] Bad file descriptor" at every
    worker exit. A plain socket is detached by uvloop instead (asyncio's loop closes either).
    """
    worker.sockets = [listener.sock for listener in worker.sockets]


def child_exit(server, worker):
    """A worker's in-flight gauges must stop counting once it is gone (its counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
