"""FastChat's pieces as child processes: controller, model workers, worker stand-ins and an
OpenAI-compatible API server in front (ours, or FastChat's own for comparison).

FastChat is never imported here: it runs in the children, possibly with another interpreter
(``python=``, e.g. a virtualenv with FastChat's own server for the benchmark)::

    with Stack(tmp_path / "stack") as stack:
        model = build_tiny_llama(tmp_path / "models")
        stack.start_controller()
        stack.start_worker(model, model_name="tiny-llama")
        print(stack.start_gateway().url)
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, Union

from .processes import HOST, ManagedProcess, StackError, Supervisor, http_post_json

__all__ = ["DEFAULT_CONV_TEMPLATE", "Stack", "controller_command", "gateway_command",
           "openai_api_server_command", "redis_command", "standin_command", "worker_command"]

DEFAULT_CONV_TEMPLATE = "vicuna_v1.1"
WORKER_MODULE = "fastchat.serve.model_worker"
#: Seconds allowed for a model worker to import torch, load the model and serve.
WORKER_START_TIMEOUT = 180.0
CONTROLLER_START_TIMEOUT = 60.0
GATEWAY_START_TIMEOUT = 60.0
STANDIN_START_TIMEOUT = 30.0
REDIS_START_TIMEOUT = 10.0

GatewayArgv = Union[Sequence[str], Callable[[int, str], Sequence[str]], None]


def controller_command(port: int, *, python: str | None = None, host: str = HOST) -> list[str]:
    """``fastchat.serve.controller`` listening on ``host:port``."""
    return [python or sys.executable, "-m", "fastchat.serve.controller",
            "--host", host, "--port", str(port)]


def worker_command(
    model_path: Union[str, Path],
    *,
    port: int,
    controller_url: str,
    model_name: str | None = None,
    conv_template: str | None = DEFAULT_CONV_TEMPLATE,
    python: str | None = None,
    host: str = HOST,
    module: str = WORKER_MODULE,
) -> list[str]:
    """``fastchat.serve.model_worker`` (or ``module`` taking its flags, e.g.
    :mod:`devstack.worker`) serving ``model_path`` (as ``model_name``) on the CPU on
    ``host:port``, registering with ``controller_url``."""
    argv = [python or sys.executable, "-m", module, "--model-path", str(model_path)]
    if model_name:
        argv += ["--model-names", model_name]
    argv += ["--host", host, "--port", str(port),
             "--worker-address", f"http://{host}:{port}",
             "--controller-address", controller_url,
             "--device", "cpu"]
    if conv_template:
        argv += ["--conv-template", conv_template]
    return argv


def standin_command(port: int, models: Sequence[str], *, controller_url: str | None = None,
                    heartbeat: float = 0.5, python: str | None = None, host: str = HOST) -> list[str]:
    """The worker stand-in (:mod:`devstack.standin`) serving ``models`` (``NAME[:PIECES[:DELAY[:TEXT]]]``
    each), registered with ``controller_url`` if given (``heartbeat`` seconds; 0: once)."""
    argv = [python or sys.executable, "-m", "devstack.standin", "--host", host, "--port", str(port)]
    for model in models:
        argv += ["--model", model]
    if controller_url:
        argv += ["--controller", controller_url, "--heartbeat", str(heartbeat)]
    return argv


def gateway_command(
    port: int, controller_url: str, *, python: str | None = None, host: str = HOST
) -> list[str]:
    """Our gateway, with FastChat ``openai_api_server``'s command-line flags."""
    return [python or sys.executable, "-m", "fastchat_api",
            "--host", host, "--port", str(port), "--controller-address", controller_url]


def openai_api_server_command(
    port: int, controller_url: str, *, python: str | None = None, host: str = HOST
) -> list[str]:
    """FastChat's own OpenAI-compatible API server."""
    return [python or sys.executable, "-m", "fastchat.serve.openai_api_server",
            "--host", host, "--port", str(port), "--controller-address", controller_url]


def redis_command(port: int, *, host: str = HOST) -> list[str]:
    """A throwaway ``redis-server`` (Debian's package) on ``host:port`` that writes nothing to
    disk."""
    return ["redis-server", "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no"]


def redis_answers(host: str, port: int) -> bool:
    """Whether a Redis server on ``host:port`` answers ``PING``."""
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Stack(Supervisor):
    """A FastChat deployment on loopback: a controller, workers and stand-ins, API servers.

    ``python`` is the interpreter of the FastChat processes (default: this one).
    """

    def __init__(self, directory: Union[str, Path], *, python: str | None = None,
                 env: Mapping[str, str] | None = None, host: str = HOST) -> None:
        super().__init__(directory, python=python, env=env, host=host)
        self.controller: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.gateway: ManagedProcess | None = None

    @property
    def controller_url(self) -> str:
        """The URL of the controller started last; :class:`StackError` if none was."""
        if self.controller is None or self.controller.url is None:
            raise StackError("no controller started in this stack")
        return self.controller.url

    def start_controller(self, port: int | None = None, *, python: str | None = None,
                         timeout: float = CONTROLLER_START_TIMEOUT) -> ManagedProcess:
        """Start ``fastchat.serve.controller`` (on ``port``, e.g. again after a restart);
        ready when ``POST /list_models`` answers."""
        port = self.reserve(port)
        url = f"http://{self.host}:{port}"
        self.controller = self.start_process(
            "controller", controller_command(port, python=python or self.python, host=self.host),
            ready=f"{url}/list_models", ready_method="POST", timeout=timeout, port=port, url=url)
        return self.controller

    def start_worker(
        self,
        model_path: Union[str, Path],
        *,
        model_name: str | None = None,
        conv_template: str | None = DEFAULT_CONV_TEMPLATE,
        port: int | None = None,
        timeout: float = WORKER_START_TIMEOUT,
        module: str = WORKER_MODULE,
    ) -> ManagedProcess:
        """Start ``fastchat.serve.model_worker`` (or ``module``: :func:`worker_command`) for
        ``model_path`` on the CPU.

        Ready when ``POST /model_details`` answers (the worker loads the model and registers
        before its HTTP server starts), then when the controller lists the model.
        """
        port = self.reserve(port)
        url = f"http://{self.host}:{port}"
        name = model_name or Path(model_path).name
        argv = worker_command(model_path, port=port, controller_url=self.controller_url,
                              model_name=model_name, conv_template=conv_template,
                              python=self.python, host=self.host, module=module)
        proc = self.start_process(f"worker-{name}", argv, ready=f"{url}/model_details",
                                  ready_method="POST", timeout=timeout, port=port, url=url)
        self.workers.append(proc)
        self.wait_for_models([name], timeout=max(10.0, timeout - proc.ready_seconds))
        return proc

    def start_standin(self, *models: str, controller_url: str | None = None,
                      heartbeat: float = 0.5) -> ManagedProcess:
        """Start the worker stand-in serving ``models`` (``NAME[:PIECES[:DELAY[:TEXT]]]`` each), with
        this interpreter; registered with ``controller_url`` if given. Ready when it answers
        ``GET /standin/requests`` (not yet when the controller lists it)."""
        port = self.free_port()
        url = f"http://{self.host}:{port}"
        argv = standin_command(port, models, controller_url=controller_url, heartbeat=heartbeat,
                               host=self.host)
        return self.start_process("standin", argv, ready=f"{url}/standin/requests",
                                  timeout=STANDIN_START_TIMEOUT, port=port, url=url)

    def start_redis(self, port: int | None = None) -> ManagedProcess:
        """Start ``redis-server`` (on ``port``, e.g. again after a stop); ready when it answers
        ``PING``. Its ``url`` is ``redis://host:port/0``."""
        port = self.reserve(port)
        return self.start_process("redis", redis_command(port, host=self.host),
                                  ready=lambda: redis_answers(self.host, port),
                                  timeout=REDIS_START_TIMEOUT, port=port,
                                  url=f"redis://{self.host}:{port}/0")

    def start_gateway(
        self,
        port: int | None = None,
        *,
        argv: GatewayArgv = None,
        ready_path: str = "/v1/models",
        timeout: float = GATEWAY_START_TIMEOUT,
        name: str = "gateway",
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """Start an OpenAI-compatible API server in front of the controller.

        ``argv`` is a command line, or a callable ``(port, controller_url) -> argv``; the
        default is :func:`gateway_command` (``python -m fastchat_api``, with this stack's
        ``python``). Ready when ``GET ready_path`` answers. The one named ``gateway`` is
        :attr:`gateway`.
        """
        port = self.reserve(port)
        url = f"http://{self.host}:{port}"
        if argv is None:
            cmd = gateway_command(port, self.controller_url, python=self.python, host=self.host)
        elif callable(argv):
            cmd = list(argv(port, self.controller_url))
        else:
            cmd = list(argv)
        proc = self.start_process(name, cmd, ready=f"{url}{ready_path}", timeout=timeout,
                                  port=port, url=url, env=env)
        if name == "gateway":
            self.gateway = proc
        return proc

    def start_openai_api_server(self, port: int | None = None, *,
                                python: str | None = None, name: str = "fastchat-openai-api-server"
                                ) -> ManagedProcess:
        """Start FastChat's own ``openai_api_server`` (with ``python``, default the stack's)
        in front of the controller."""
        py = python or self.python
        return self.start_gateway(
            port, argv=lambda p, c: openai_api_server_command(p, c, python=py, host=self.host),
            name=name)

    def list_models(self, timeout: float = 5.0) -> list[str]:
        """The controller's ``POST /list_models``."""
        return list(http_post_json(f"{self.controller_url}/list_models", {}, timeout=timeout)
                    .get("models", []))

    def wait_for_models(self, names: Iterable[str], timeout: float = 120.0) -> list[str]:
        """Poll the controller until it lists all ``names``; its model list.

        Raises :class:`StackError` at once if the controller or a worker dies meanwhile, and
        after ``timeout`` seconds, with the children's log tails.
        """
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            for proc in [self.controller, *self.workers]:
                if proc is not None and not proc.alive():
                    raise proc.failure(f"exited with code {proc.returncode} "
                                       f"while waiting for models {sorted(wanted)}")
            try:
                models = self.list_models()
            except (OSError, ValueError):
                models = []
            if wanted.issubset(models):
                return models
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- {p.describe()} ---\n{p.tail(20)}" for p in self.processes)
                raise StackError(f"models {sorted(wanted - set(models))} not registered after "
                                 f"{timeout:.0f} s (controller lists {models})\n{tails}")
            time.sleep(0.25)
