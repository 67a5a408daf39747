"""``python -m devstack``: a FastChat controller, a model worker serving the tiny Llama (or a
model of yours) and the gateway on this machine, until Ctrl-C or SIGTERM.

It is the quick start of README.rst: a whole stack to try the gateway against, without a GPU
or a model download. ``--chat TEXT`` sends one chat request once it is up; ``--exit`` stops it
then, so that a script can check the whole path and get an exit status.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .models import DEFAULT_MODEL_NAME, build_tiny_llama
from .processes import StackError, http_post_json
from .stack import DEFAULT_CONV_TEMPLATE, Stack


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
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
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"devstack: {message}", flush=True)


def chat(base_url: str, model: str, text: str) -> str:
    """One chat request through the server, as a user would send it; the answer's text."""
    answer = http_post_json(
        f"{base_url}/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 32},
        timeout=120.0,
    )
    return answer["choices"][0]["message"]["content"]


def model_path(args: argparse.Namespace, directory: Path) -> Path:
    """``--model-path``, or the tiny Llama built (once) under ``directory``."""
    if args.model_path is not None:
        return args.model_path.resolve()
    started = time.monotonic()
    path = build_tiny_llama(directory / "models", args.model_name)
    say(f"model {path} ({time.monotonic() - started:.1f} s)")
    return path


def bring_up(stack: Stack, args: argparse.Namespace, model: Path) -> None:
    """Controller, worker and API server; then ``--chat``, and wait unless ``--exit``."""
    stack.start_controller(args.controller_port)
    say(f"controller {stack.controller_url}")
    say("starting model worker (importing torch takes a while)...")
    worker = stack.start_worker(model, model_name=args.model_name, port=args.worker_port,
                                conv_template=args.conv_template)
    say(f"worker     {worker.url} serving {args.model_name!r} (ready in {worker.ready_seconds:.1f} s)")
    api = None
    if args.fastchat_api_server:
        api = stack.start_openai_api_server(args.port)
    elif not args.no_gateway:
        api = stack.start_gateway(args.port)
    say("up\n" + stack.summary())
    if api is not None:
        print(f"\n  OpenAI base URL: {api.url}/v1\n", flush=True)
        if args.chat:
            say(f"chat answer: {chat(api.url, args.model_name, args.chat)!r}")
    say("press Ctrl-C to stop")
    while not args.exit:
        time.sleep(1.0)
        stack.check_alive()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack; 0 after Ctrl-C, SIGTERM or ``--exit``, 1 if a process failed."""
    args = parse_args(argv)
    directory: Path = args.dir.resolve()
    say(f"directory {directory}")
    model = model_path(args, directory)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = Stack(directory, python=args.python)
    code = 0
    try:
        bring_up(stack, args, model)
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
