"""``python -m devstack``: a FastChat controller, model workers and the gateway on this machine,
until Ctrl-C or SIGTERM.

It is the quick start of README.rst: a whole stack to try the gateway against, on the CPU. By
default the workers serve two real small models from PyPI (SmolLM2-135M-Instruct for chat,
all-MiniLM-L6-v2 for embeddings; :mod:`devstack.realmodels` prepares them once into a cache);
``--tiny`` serves the tiny random Llama instead (built in seconds, answers gibberish), and
``--model-path`` a model of yours. ``--chat TEXT`` and ``--embed TEXT`` send one request each
once it is up; ``--exit`` stops it then, so that a script can check the whole path and get an
exit status. A port it is told to use that is taken stops it at once, before anything starts.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .models import DEFAULT_MODEL_NAME, build_tiny_llama
from .processes import HOST, StackError, check_port_free, http_post_json
from .realmodels import (CHAT_MODEL, EMBEDDING_MODEL, default_cache_dir, prepare_chat_model,
                         prepare_embedding_model)
from .stack import DEFAULT_CONV_TEMPLATE, Stack
from .worker import SMOLLM2_TEMPLATE


@dataclass
class Served:
    """What the workers serve: the chat model (path, name, template) and the embedding model."""

    chat_path: Path
    chat_name: str
    conv_template: str
    embedding_path: Path | None = None
    embedding_name: str = EMBEDDING_MODEL


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Run a local FastChat controller, model workers (SmolLM2-135M-Instruct and "
                    "all-MiniLM-L6-v2 by default) and the fastchat_api gateway until Ctrl-C / "
                    "SIGTERM.",
    )
    parser.add_argument("--dir", default=".stack", type=Path,
                        help="directory for the logs and the tiny model (default: .stack)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="where the real models are prepared and kept (default: "
                             "$DEVSTACK_MODEL_CACHE or ~/.cache/fastchat-api-devstack)")
    parser.add_argument("--port", default=8000, type=int, help="gateway port (default: 8000)")
    parser.add_argument("--tiny", action="store_true",
                        help="serve the tiny random Llama (fast, meaningless answers) and no "
                             "embedding model")
    parser.add_argument("--model-path", type=Path, default=None,
                        help="serve this chat model instead (and no embedding model)")
    parser.add_argument("--model-name", default=None,
                        help="name the worker serves the chat model under")
    parser.add_argument("--conv-template", default=None,
                        help=f"the chat model's template (default: {SMOLLM2_TEMPLATE}, "
                             f"{DEFAULT_CONV_TEMPLATE} with --tiny or --model-path)")
    parser.add_argument("--controller-port", type=int, default=None)
    parser.add_argument("--worker-port", type=int, default=None, help="the chat worker's port")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the FastChat processes")
    parser.add_argument("--no-gateway", action="store_true", help="do not start the gateway")
    parser.add_argument("--fastchat-api-server", action="store_true",
                        help="run FastChat's own openai_api_server as the gateway instead")
    parser.add_argument("--chat", metavar="TEXT",
                        help="once up, send TEXT as a chat request and print the answer")
    parser.add_argument("--embed", metavar="TEXT",
                        help="once up, embed TEXT with the embedding model and print the vector's "
                             "size and norm")
    parser.add_argument("--exit", action="store_true",
                        help="stop the stack once it is up (and --chat is answered)")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"devstack: {message}", flush=True)


def chat(base_url: str, model: str, text: str) -> str:
    """One chat request through the server, as a user would send it (temperature 0); the
    answer's text."""
    answer = http_post_json(
        f"{base_url}/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 64,
         "temperature": 0},
        timeout=120.0,
    )
    return answer["choices"][0]["message"]["content"]


def embed(base_url: str, model: str, text: str) -> str:
    """One embedding request through the server; the vector described in one line."""
    answer = http_post_json(f"{base_url}/v1/embeddings", {"model": model, "input": text},
                            timeout=120.0)
    vector = answer["data"][0]["embedding"]
    head = ", ".join(f"{x:.4f}" for x in vector[:4])
    return f"{len(vector)} numbers, norm {math.sqrt(math.fsum(x * x for x in vector)):.4f}: [{head}, ...]"


def check_ports(args: argparse.Namespace) -> None:
    """:class:`StackError` naming the first port given on the command line that is taken."""
    ports = [args.controller_port, args.worker_port]
    if not args.no_gateway:
        ports.append(args.port)
    for port in ports:
        if port is not None:
            check_port_free(HOST, port)


def models(args: argparse.Namespace, directory: Path) -> Served:
    """The models to serve, prepared (once) if needed."""
    if args.model_path is not None:
        path = args.model_path.resolve()
        return Served(path, args.model_name or path.name,
                      args.conv_template or DEFAULT_CONV_TEMPLATE)
    started = time.monotonic()
    if args.tiny:
        name = args.model_name or DEFAULT_MODEL_NAME
        path = build_tiny_llama(directory / "models", name)
        say(f"model {path} ({time.monotonic() - started:.1f} s)")
        return Served(path, name, args.conv_template or DEFAULT_CONV_TEMPLATE)
    cache = (args.cache or default_cache_dir()).resolve()
    chat_path = prepare_chat_model(cache, say)
    embedding_path = prepare_embedding_model(cache, say)
    say(f"models ready in {time.monotonic() - started:.1f} s")
    return Served(chat_path, args.model_name or CHAT_MODEL,
                  args.conv_template or SMOLLM2_TEMPLATE, embedding_path)


def start_workers(stack: Stack, args: argparse.Namespace, served: Served) -> None:
    """The chat worker and, if there is one, the embedding worker, through
    :mod:`devstack.worker` (FastChat's worker with the SmolLM2 template and the
    sentence-transformers adapter registered)."""
    say("starting model workers (importing torch takes a while)...")
    worker = stack.start_worker(served.chat_path, model_name=served.chat_name,
                                port=args.worker_port, conv_template=served.conv_template,
                                module="devstack.worker")
    say(f"worker     {worker.url} serving {served.chat_name!r} "
        f"(ready in {worker.ready_seconds:.1f} s)")
    if served.embedding_path is not None:
        worker = stack.start_worker(served.embedding_path, model_name=served.embedding_name,
                                    conv_template=None, module="devstack.worker")
        say(f"worker     {worker.url} serving {served.embedding_name!r} "
            f"(ready in {worker.ready_seconds:.1f} s)")


def bring_up(stack: Stack, args: argparse.Namespace, served: Served) -> None:
    """Controller, workers and API server; then ``--chat`` and ``--embed``, and wait unless
    ``--exit``."""
    stack.start_controller(args.controller_port)
    say(f"controller {stack.controller_url}")
    start_workers(stack, args, served)
    api = None
    if args.fastchat_api_server:
        api = stack.start_openai_api_server(args.port)
    elif not args.no_gateway:
        api = stack.start_gateway(args.port)
    say("up\n" + stack.summary())
    if api is not None:
        print(f"\n  OpenAI base URL: {api.url}/v1\n", flush=True)
        if args.chat:
            say(f"chat answer: {chat(api.url, served.chat_name, args.chat)!r}")
        if args.embed and served.embedding_path is not None:
            say(f"embedding: {embed(api.url, served.embedding_name, args.embed)}")
    say("press Ctrl-C to stop")
    while not args.exit:
        time.sleep(1.0)
        stack.check_alive()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack; 0 after Ctrl-C, SIGTERM or ``--exit``, 1 if a process failed."""
    args = parse_args(argv)
    directory: Path = args.dir.resolve()
    try:
        check_ports(args)
        say(f"directory {directory}")
        served = models(args, directory)
    except (StackError, subprocess.CalledProcessError) as exc:  # a port is taken; pip failed
        print(f"devstack: error: {exc}", file=sys.stderr, flush=True)
        return 1

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = Stack(directory, python=args.python)
    code = 0
    try:
        bring_up(stack, args, served)
    except (StackError, OSError) as exc:  # a child failed; the --chat request failed
        print(f"devstack: error: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        for s in previous:  # a second Ctrl-C must not interrupt the cleanup
            signal.signal(s, signal.SIG_IGN)
        say("stopping...")
        stack.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        say("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
