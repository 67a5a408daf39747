"""Local development stack: a real FastChat controller + model worker + our gateway.

This module never imports ``fastchat``: FastChat runs in subprocesses, possibly with
another interpreter.  It is used three ways:

* ``python -m fastchat_api.devstack [--dir .stack] [--port 8000] [--model-name tiny-llama]``
  builds a tiny random Llama, starts a FastChat controller, one FastChat
  ``model_worker`` serving it and the gateway (``python -m fastchat_api``), prints
  the URLs and waits for Ctrl-C / SIGTERM, then stops everything.
* test fixtures call :func:`build_tiny_llama` and :class:`Stack` to start the real
  controller + worker once per session.
* benchmarks reuse :class:`Stack` (``python=`` selects another interpreter, e.g. for
  FastChat's own ``openai_api_server``).

Only the standard library is imported at module level; ``torch``, ``transformers``
and ``tokenizers`` are imported lazily inside :func:`build_tiny_llama`.

Example::

    with Stack(tmp_path / "stack") as stack:
        model = build_tiny_llama(tmp_path / "models")
        stack.start_controller()
        stack.start_worker(model, model_name="tiny-llama")
        gateway = stack.start_gateway()
        print(gateway.url)
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

__all__ = [
    "DEFAULT_CONV_TEMPLATE",
    "DEFAULT_MODEL_NAME",
    "VICUNA_V1_1_CONV",
    "ManagedProcess",
    "Stack",
    "StackError",
    "build_tiny_llama",
    "controller_command",
    "find_free_port",
    "gateway_command",
    "http_post_json",
    "main",
    "openai_api_server_command",
    "worker_command",
]

HOST = "127.0.0.1"
DEFAULT_MODEL_NAME = "tiny-llama"
DEFAULT_CONV_TEMPLATE = "vicuna_v1.1"
#: What a fschat 0.2.36 worker started with ``--conv-template vicuna_v1.1`` answers to
#: ``/worker_get_conv_template`` (the ``conv`` value): served by the test and benchmark stand-ins.
VICUNA_V1_1_CONV = {
    "name": "vicuna_v1.1",
    "system_template": "{system_message}",
    "system_message": "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "roles": ["USER", "ASSISTANT"],
    "messages": [],
    "offset": 0,
    "sep_style": 2,  # ADD_COLON_TWO in fschat 0.2.36's numbering
    "sep": " ",
    "sep2": "</s>",
    "stop_str": None,
    "stop_token_ids": None,
}
#: Seconds allowed for a model worker to import torch, load the model and serve.
WORKER_START_TIMEOUT = 180.0
CONTROLLER_START_TIMEOUT = 60.0
GATEWAY_START_TIMEOUT = 60.0
#: Seconds between SIGTERM and SIGKILL when stopping a child.
STOP_GRACE = 5.0
LOG_TAIL_LINES = 60

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """A child process died, or did not become ready in time."""


# --------------------------------------------------------------------------- #
# Tiny random Llama
# --------------------------------------------------------------------------- #

# Bump when the recipe below changes: a model built by an older recipe is rebuilt.
_RECIPE_VERSION = 1
_MARKER = ".devstack-model.json"

_CORPUS_LINES = (
    "A chat between a curious user and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: Hello! Who are you? ASSISTANT: I am a tiny language model used for tests.",
    "USER: What is the capital of France? ASSISTANT: The capital of France is Paris.",
    "USER: Tell me a joke. ASSISTANT: Why did the chicken cross the road?",
    "USER: Write a haiku about the sea. ASSISTANT: Waves fold into foam, salt wind hums.",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
    "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.",
    "Python, JSON, HTTP, OpenAI, FastChat, aiohttp, streaming, embeddings, tokens.",
    "def hello(name):\n    return f'Hello, {name}!'\n\nprint(hello('world'))",
    '{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}]}',
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 1000 3.14159 2.71828 -1 1e-5",
    "Once upon a time, in a land far away, there lived a small model that "
    "generated random words with great confidence.",
    "Bonjour, comment allez-vous? Guten Tag! ¿Qué tal? Ciao! こんにちは 你好 🙂",
    "system user assistant function tool stop length content role name",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua.",
)

_WORDS = (
    "time person year way day thing man world life hand part child eye woman place "
    "work week case point government company number group problem fact be have do "
    "say get make go know take see come think look want give use find tell ask "
    "seem feel try leave call good new first last long great little own other old "
    "right big high different small large next early young important few public "
    "bad same able model token stream server worker controller request response "
    "answer question message chat prompt context length batch queue cache memory"
).split()


def _training_corpus() -> list[str]:
    """A few KiB of deterministic text, enough for ~1000 byte-level BPE merges."""
    lines = list(_CORPUS_LINES)
    n = len(_WORDS)
    for i in range(300):
        a, b, c, d = (_WORDS[(i * k + k * k) % n] for k in (1, 3, 7, 11))
        lines.append(f"The {a} of the {b} is {c}, said the {d} in {1900 + i}.")
    return lines


def _model_spec(name: str) -> dict[str, Any]:
    return {
        "recipe": _RECIPE_VERSION,
        "name": name,
        "vocab_size": 1000,
        "hidden_size": 64,
        "intermediate_size": 172,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 2048,
        "seed": 0,
    }


def _is_built(path: Path, spec: Mapping[str, Any]) -> bool:
    try:
        return json.loads((path / _MARKER).read_text())["spec"] == dict(spec)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def build_tiny_llama(directory: Path, name: str = DEFAULT_MODEL_NAME) -> Path:
    """Build (or reuse) a randomly initialised tiny Llama in ``directory / name``.

    The model has 2 layers, hidden size 64, 4 heads, ``max_position_embeddings``
    2048 and a byte-level BPE tokenizer (~1000 tokens; ``<unk>``=0, ``<s>``=1,
    ``</s>``=2) that prepends ``<s>`` like Llama's.  Weights are deterministic
    (``torch.manual_seed``).  The build is idempotent: a marker file records the
    recipe, and a complete build is reused.  Builds go to a temporary directory
    first and are renamed into place, so concurrent callers never see half a model.

    Returns the model directory (to pass as FastChat's ``--model-path``).
    """
    directory = Path(directory)
    target = directory / name
    spec = _model_spec(name)
    if _is_built(target, spec):
        return target

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=directory))
    try:
        # -- tokenizer ------------------------------------------------------
        specials = ["<unk>", "<s>", "</s>"]
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=spec["vocab_size"],
            min_frequency=1,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_training_corpus(), trainer=trainer)
        bos_id = tok.token_to_id("<s>")
        eos_id = tok.token_to_id("</s>")
        unk_id = tok.token_to_id("<unk>")
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single="<s> $A",
                    pair="<s> $A <s> $B",
                    special_tokens=[("<s>", bos_id)],
                ),
            ]
        )
        hf_tok = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            model_max_length=spec["max_position_embeddings"],
            padding_side="left",
            clean_up_tokenization_spaces=False,
        )

        # -- model ----------------------------------------------------------
        config = LlamaConfig(
            vocab_size=len(hf_tok),
            hidden_size=spec["hidden_size"],
            intermediate_size=spec["intermediate_size"],
            num_hidden_layers=spec["num_hidden_layers"],
            num_attention_heads=spec["num_attention_heads"],
            num_key_value_heads=spec["num_key_value_heads"],
            max_position_embeddings=spec["max_position_embeddings"],
            bos_token_id=bos_id,
            eos_token_id=eos_id,
            pad_token_id=None,
            tie_word_embeddings=False,
        )
        torch.manual_seed(spec["seed"])
        model = LlamaForCausalLM(config)
        model.eval()
        model.save_pretrained(tmp, safe_serialization=True)
        hf_tok.save_pretrained(tmp)
        (tmp / _MARKER).write_text(
            json.dumps(
                {
                    "spec": spec,
                    "vocab_size": len(hf_tok),
                    "special_token_ids": {"<unk>": unk_id, "<s>": bos_id, "</s>": eos_id},
                    "build_seconds": round(time.monotonic() - started, 3),
                },
                indent=2,
            )
            + "\n"
        )

        # -- move into place --------------------------------------------------
        os.chmod(tmp, 0o755)  # mkdtemp made it 0700
        if _is_built(target, spec):  # somebody else finished first
            return target
        if target.exists():  # stale or partial build
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and _is_built(target, spec):
                return target
            raise
        return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- #
# HTTP helpers (stdlib only)
# --------------------------------------------------------------------------- #


def find_free_port(host: str = HOST, exclude: Iterable[int] = ()) -> int:
    """A TCP port that is free on ``host`` right now (and not in ``exclude``)."""
    excluded = set(exclude)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in excluded:
            return port
    raise StackError("could not find a free port")


def http_post_json(url: str, payload: Any = None, timeout: float = 10.0) -> Any:
    """POST ``payload`` as JSON and return the decoded JSON answer (stdlib only)."""
    data = json.dumps({} if payload is None else payload).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode() or "null")


def _http_ok(url: str, method: str = "GET", body: Any = None, timeout: float = 3.0) -> bool:
    """True when ``url`` answers with a status below 500."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(Exception):
            exc.close()
        return exc.code < 500
    except (urllib.error.URLError, OSError, ValueError):
        return False


# --------------------------------------------------------------------------- #
# Command lines
# --------------------------------------------------------------------------- #


def controller_command(port: int, *, python: str | None = None, host: str = HOST) -> list[str]:
    return [python or sys.executable, "-m", "fastchat.serve.controller",
            "--host", host, "--port", str(port)]


def worker_command(
    model_path: Union[str, Path],
    *,
    port: int,
    controller_url: str,
    model_name: str | None = None,
    conv_template: str | None = DEFAULT_CONV_TEMPLATE,
    device: str = "cpu",
    python: str | None = None,
    host: str = HOST,
    extra_args: Sequence[str] = (),
) -> list[str]:
    argv = [python or sys.executable, "-m", "fastchat.serve.model_worker",
            "--model-path", str(model_path)]
    if model_name:
        argv += ["--model-names", model_name]
    argv += ["--host", host, "--port", str(port),
             "--worker-address", f"http://{host}:{port}",
             "--controller-address", controller_url,
             "--device", device]
    if conv_template:
        argv += ["--conv-template", conv_template]
    return argv + list(extra_args)


def gateway_command(
    port: int, controller_url: str, *, python: str | None = None, host: str = HOST
) -> list[str]:
    """Our gateway, with FastChat ``openai_api_server``'s command-line flags."""
    return [python or sys.executable, "-m", "fastchat_api",
            "--host", host, "--port", str(port), "--controller-address", controller_url]


def openai_api_server_command(
    port: int, controller_url: str, *, python: str | None = None, host: str = HOST
) -> list[str]:
    """FastChat's own OpenAI-compatible API server (for benchmarks)."""
    return [python or sys.executable, "-m", "fastchat.serve.openai_api_server",
            "--host", host, "--port", str(port), "--controller-address", controller_url]


# --------------------------------------------------------------------------- #
# Process management
# --------------------------------------------------------------------------- #

ReadyCheck = Union[str, Callable[[], bool], None]
GatewayArgv = Union[Sequence[str], Callable[[int, str], Sequence[str]], None]


@dataclass
class ManagedProcess:
    """One child process (leader of its own process group) and its log file."""

    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path
    port: int | None = None
    url: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    ready_seconds: float | None = None
    _log_file: Any = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the child's stdout/stderr log."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}, log {self.log_path})"

    # -- stopping ------------------------------------------------------------
    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _exited_unreaped(self) -> bool:
        """True once the leader has exited; it is left a zombie so its pid (= the
        process group id) cannot be reused while we still signal the group."""
        if self.popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def terminate(self) -> None:
        """Send SIGTERM to the child's process group (no wait)."""
        if self.popen.returncode is None:
            self._signal_group(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        """Wait until ``deadline`` for the leader to exit, SIGKILL the group, reap."""
        if self.popen.returncode is None:
            while time.monotonic() < deadline and not self._exited_unreaped():
                time.sleep(0.05)
            # Sweep the whole group (leader still unreaped, so the pgid is ours).
            self._signal_group(signal.SIGKILL)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
                pass
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        self.terminate()
        self.wait_stopped(time.monotonic() + grace)
        return self.popen.returncode


def _default_child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # FastChat's loggers write files into $LOGDIR (default: cwd); "" disables
    # them: everything already goes to our per-process log.
    env.setdefault("LOGDIR", "")
    # Make ``python -m fastchat_api`` importable from the checkout.
    pp = env.get("PYTHONPATH", "")
    parts = [p for p in pp.split(os.pathsep) if p]
    if str(_PROJECT_ROOT) not in parts:
        env["PYTHONPATH"] = os.pathsep.join([str(_PROJECT_ROOT), *parts])
    if extra:
        env.update(extra)
    return env


_live_stacks: "weakref.WeakSet[Stack]" = weakref.WeakSet()


@atexit.register
def _close_live_stacks() -> None:  # pragma: no cover - safety net
    for stack in list(_live_stacks):
        with contextlib.suppress(Exception):
            stack.close()


class Stack:
    """A set of child processes (controller, workers, gateway...) on 127.0.0.1.

    Each child runs in its own process group with stdout+stderr in
    ``<directory>/logs/<name>.log``.  ``close()`` (also on ``__exit__`` and at
    interpreter exit) sends SIGTERM to every group, then SIGKILL after
    ``STOP_GRACE`` seconds, and reaps everything.
    """

    def __init__(
        self,
        directory: Union[str, Path, None] = None,
        *,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        host: str = HOST,
    ) -> None:
        if directory is None:
            directory = tempfile.mkdtemp(prefix="fastchat-devstack-")
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.directory / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.python = python or sys.executable
        self.env = dict(env or {})
        self.host = host
        self.processes: list[ManagedProcess] = []
        self.controller: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.gateway: ManagedProcess | None = None
        self._ports: set[int] = set()
        self._lock = threading.Lock()
        self._closed = False
        _live_stacks.add(self)

    # -- context manager -------------------------------------------------------
    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------
    @property
    def controller_url(self) -> str:
        if self.controller is None or self.controller.url is None:
            raise StackError("no controller started in this stack")
        return self.controller.url

    def free_port(self) -> int:
        with self._lock:
            port = find_free_port(self.host, exclude=self._ports)
            self._ports.add(port)
            return port

    def _reserve(self, port: int | None) -> int:
        if port is None:
            return self.free_port()
        with self._lock:
            self._ports.add(port)
        return port

    def _unique_name(self, name: str) -> str:
        taken = {p.name for p in self.processes}
        if name not in taken:
            return name
        i = 2
        while f"{name}-{i}" in taken:
            i += 1
        return f"{name}-{i}"

    def _fail(self, proc: ManagedProcess, why: str) -> StackError:
        return StackError(
            f"{proc.describe()} {why}\n"
            f"command: {' '.join(proc.argv)}\n"
            f"--- last lines of {proc.log_path} ---\n{proc.tail()}"
        )

    # -- generic start ---------------------------------------------------------
    def start_process(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: ReadyCheck = None,
        ready_method: str = "GET",
        ready_body: Any = None,
        timeout: float = 60.0,
        port: int | None = None,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Union[str, Path, None] = None,
    ) -> ManagedProcess:
        """Start ``argv`` in its own process group and wait until it is ready.

        ``ready`` is a URL (ready when it answers with a status < 500, using
        ``ready_method``/``ready_body``), a callable returning True when ready, or
        None (no wait).  Raises :class:`StackError` (with the log tail) when the
        process exits or is not ready within ``timeout`` seconds; the process is
        then stopped.
        """
        if self._closed:
            raise StackError("stack is closed")
        name = self._unique_name(name)
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "ab", buffering=0)
        log_file.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        child_env = _default_child_env({**self.env, **(env or {})})
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=str(cwd or self.directory),
                env=child_env,
                start_new_session=True,  # own process group: killpg stops it all
                preexec_fn=_die_with_parent_preexec(),
            )
        except BaseException:
            log_file.close()
            raise
        proc = ManagedProcess(name=name, argv=list(argv), popen=popen, log_path=log_path,
                              port=port, url=url, _log_file=log_file)
        self.processes.append(proc)
        if ready is not None:
            try:
                self._wait_ready(proc, ready, ready_method, ready_body, timeout)
            except BaseException:
                proc.stop()
                raise
        proc.ready_seconds = time.monotonic() - proc.started_at
        return proc

    def _wait_ready(self, proc: ManagedProcess, ready: ReadyCheck, method: str,
                    body: Any, timeout: float) -> None:
        if isinstance(ready, str):
            check: Callable[[], bool] = lambda: _http_ok(ready, method, body)  # noqa: E731
        else:
            check = ready  # type: ignore[assignment]
        deadline = time.monotonic() + timeout
        while True:
            if not proc.alive():
                raise self._fail(proc, f"exited with code {proc.returncode} before it was ready")
            if check():
                return
            if time.monotonic() >= deadline:
                raise self._fail(proc, f"was not ready after {timeout:.0f} s")
            time.sleep(0.25)

    # -- FastChat pieces -------------------------------------------------------
    def start_controller(
        self,
        port: int | None = None,
        *,
        python: str | None = None,
        timeout: float = CONTROLLER_START_TIMEOUT,
        extra_args: Sequence[str] = (),
    ) -> ManagedProcess:
        """Start ``fastchat.serve.controller``; ready when ``POST /list_models`` answers."""
        port = self._reserve(port)
        url = f"http://{self.host}:{port}"
        proc = self.start_process(
            "controller",
            controller_command(port, python=python or self.python, host=self.host) + list(extra_args),
            ready=f"{url}/list_models", ready_method="POST", ready_body={},
            timeout=timeout, port=port, url=url,
        )
        self.controller = proc
        return proc

    def start_worker(
        self,
        model_path: Union[str, Path],
        *,
        model_name: str | None = None,
        port: int | None = None,
        conv_template: str | None = DEFAULT_CONV_TEMPLATE,
        extra_args: Sequence[str] = (),
        device: str = "cpu",
        python: str | None = None,
        timeout: float = WORKER_START_TIMEOUT,
        wait_registered: bool = True,
        controller_url: str | None = None,
    ) -> ManagedProcess:
        """Start ``fastchat.serve.model_worker`` for ``model_path``.

        Ready when ``POST /model_details`` answers (the worker loads the model and
        registers before its HTTP server starts), then, with ``wait_registered``,
        when the controller lists ``model_name``.
        """
        controller_url = controller_url or self.controller_url
        port = self._reserve(port)
        url = f"http://{self.host}:{port}"
        name = model_name or Path(model_path).name
        argv = worker_command(model_path, port=port, controller_url=controller_url,
                              model_name=model_name, conv_template=conv_template,
                              device=device, python=python or self.python,
                              host=self.host, extra_args=extra_args)
        proc = self.start_process(
            f"worker-{name}", argv,
            ready=f"{url}/model_details", ready_method="POST", ready_body={},
            timeout=timeout, port=port, url=url,
        )
        self.workers.append(proc)
        if wait_registered:
            remaining = max(10.0, timeout - (time.monotonic() - proc.started_at))
            self.wait_for_models([name], timeout=remaining, controller_url=controller_url)
        return proc

    def start_gateway(
        self,
        port: int | None = None,
        *,
        argv: GatewayArgv = None,
        python: str | None = None,
        ready_path: str = "/v1/models",
        timeout: float = GATEWAY_START_TIMEOUT,
        name: str = "gateway",
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """Start an OpenAI-compatible API server in front of the controller.

        ``argv`` is a command line, or a callable ``(port, controller_url) -> argv``;
        the default is :func:`gateway_command` (``python -m fastchat_api``).  Pass
        ``argv=lambda p, c: openai_api_server_command(p, c, python=...)`` to run
        FastChat's own server instead.  Ready when ``GET ready_path`` answers.
        """
        port = self._reserve(port)
        url = f"http://{self.host}:{port}"
        controller_url = self.controller_url
        if argv is None:
            cmd = gateway_command(port, controller_url, python=python or self.python, host=self.host)
        elif callable(argv):
            cmd = list(argv(port, controller_url))
        else:
            cmd = list(argv)
        proc = self.start_process(name, cmd, ready=f"{url}{ready_path}", timeout=timeout,
                                  port=port, url=url, env=env)
        if name == "gateway":
            self.gateway = proc
        return proc

    def start_openai_api_server(
        self,
        port: int | None = None,
        *,
        python: str | None = None,
        timeout: float = GATEWAY_START_TIMEOUT,
        extra_args: Sequence[str] = (),
    ) -> ManagedProcess:
        """Start FastChat's own ``openai_api_server`` (e.g. with another ``python``
        for benchmarks) against this stack's controller."""
        py = python or self.python
        return self.start_gateway(
            port,
            argv=lambda p, c: openai_api_server_command(p, c, python=py, host=self.host)
            + list(extra_args),
            timeout=timeout,
            name="fastchat-openai-api-server",
        )

    def list_models(self, controller_url: str | None = None, timeout: float = 5.0) -> list[str]:
        url = (controller_url or self.controller_url) + "/list_models"
        return list(http_post_json(url, {}, timeout=timeout).get("models", []))

    def wait_for_models(
        self,
        names: Iterable[str],
        timeout: float = 120.0,
        *,
        controller_url: str | None = None,
    ) -> list[str]:
        """Poll the controller's ``POST /list_models`` until all ``names`` are listed.

        Fails early (with the log tail) if a child of this stack dies meanwhile.
        Returns the controller's model list.
        """
        wanted = set(names)
        deadline = time.monotonic() + timeout
        models: list[str] = []
        while True:
            for proc in self.processes:
                if proc.returncode is not None and proc in self.workers + [self.controller]:
                    raise self._fail(proc, f"exited with code {proc.returncode} "
                                           f"while waiting for models {sorted(wanted)}")
            try:
                models = self.list_models(controller_url)
            except (urllib.error.URLError, OSError, ValueError):
                models = []
            if wanted.issubset(models):
                return models
            if time.monotonic() >= deadline:
                tails = "\n".join(
                    f"--- {p.describe()} ---\n{p.tail(20)}" for p in self.processes
                )
                raise StackError(
                    f"models {sorted(wanted - set(models))} not registered after "
                    f"{timeout:.0f} s (controller lists {models})\n{tails}"
                )
            time.sleep(0.25)

    def check_alive(self) -> None:
        """Raise :class:`StackError` if any child has exited."""
        for proc in self.processes:
            if not proc.alive():
                raise self._fail(proc, f"exited with code {proc.returncode}")

    # -- stopping --------------------------------------------------------------
    def close(self, grace: float = STOP_GRACE) -> None:
        """Stop all children: SIGTERM to every group (newest first), SIGKILL after
        ``grace`` seconds, reap.  Idempotent."""
        self._closed = True
        procs = list(reversed(self.processes))
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + grace
        for proc in procs:
            proc.wait_stopped(deadline)
        _live_stacks.discard(self)

    def summary(self) -> str:
        lines = []
        for proc in self.processes:
            state = "running" if proc.alive() else f"exited {proc.returncode}"
            lines.append(f"  {proc.name:<20} {proc.url or '-':<28} pid {proc.pid:<7} "
                         f"{state:<10} log {proc.log_path}")
        return "\n".join(lines)


def _die_with_parent_preexec() -> Callable[[], None] | None:
    """On Linux, ask the kernel to SIGTERM the child when its parent dies, so a
    crashed test run leaves no orphans.  PR_SET_PDEATHSIG fires when the *thread*
    that forked exits, so it is only used from the main thread."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != parent:  # parent already gone
            os._exit(1)

    return preexec


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def _chat(base_url: str, model: str, text: str) -> str:
    """One chat request through the server, as a user would send it."""
    answer = http_post_json(
        f"{base_url}/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 32},
        timeout=120.0,
    )
    return answer["choices"][0]["message"]["content"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastchat_api.devstack",
        description="Run a local FastChat controller + tiny-Llama model worker + the "
                    "fastchat_api gateway until Ctrl-C / SIGTERM.",
    )
    parser.add_argument("--dir", default=".stack", type=Path,
                        help="directory for the model and logs (default: .stack)")
    parser.add_argument("--port", default=8000, type=int, help="gateway port (default: 8000)")
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME,
                        help="name the worker serves the model under")
    parser.add_argument("--model-path", type=Path, default=None,
                        help="serve this model instead of building the tiny Llama")
    parser.add_argument("--controller-port", type=int, default=None)
    parser.add_argument("--worker-port", type=int, default=None)
    parser.add_argument("--conv-template", default=DEFAULT_CONV_TEMPLATE)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the FastChat processes")
    parser.add_argument("--no-gateway", action="store_true", help="do not start the gateway")
    parser.add_argument("--fastchat-api-server", action="store_true",
                        help="run FastChat's own openai_api_server as the gateway instead")
    parser.add_argument("--chat", metavar="TEXT",
                        help="once up, send TEXT as a chat request and print the answer")
    parser.add_argument("--exit", action="store_true",
                        help="stop the stack once it is up (and --chat is answered)")
    args = parser.parse_args(argv)

    directory: Path = args.dir.resolve()
    print(f"devstack: directory {directory}", flush=True)
    if args.model_path is None:
        t0 = time.monotonic()
        model_path = build_tiny_llama(directory / "models", args.model_name)
        print(f"devstack: model {model_path} ({time.monotonic() - t0:.1f} s)", flush=True)
    else:
        model_path = args.model_path.resolve()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = Stack(directory, python=args.python)
    code = 0
    try:
        stack.start_controller(args.controller_port)
        print(f"devstack: controller {stack.controller_url}", flush=True)
        print("devstack: starting model worker (importing torch takes a while)...", flush=True)
        worker = stack.start_worker(model_path, model_name=args.model_name, port=args.worker_port,
                                    conv_template=args.conv_template)
        print(f"devstack: worker     {worker.url} serving {args.model_name!r} "
              f"(ready in {worker.ready_seconds:.1f} s)", flush=True)
        if args.fastchat_api_server:
            stack.start_openai_api_server(args.port)
        elif not args.no_gateway:
            stack.start_gateway(args.port)
        print("devstack: up\n" + stack.summary(), flush=True)
        api = stack.gateway or next(
            (p for p in stack.processes if p.name == "fastchat-openai-api-server"), None)
        if api is not None:
            print(f"\n  OpenAI base URL: {api.url}/v1\n", flush=True)
            if args.chat:
                print(f"devstack: chat answer: {_chat(api.url, args.model_name, args.chat)!r}",
                      flush=True)
        print("devstack: press Ctrl-C to stop", flush=True)
        while not args.exit:
            time.sleep(1.0)
            stack.check_alive()
    except StackError as exc:
        print(f"devstack: error: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        for s in previous:  # a second Ctrl-C must not interrupt the cleanup
            signal.signal(s, signal.SIG_IGN)
        print("devstack: stopping...", flush=True)
        stack.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        print("devstack: stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
