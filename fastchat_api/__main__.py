"""``python -m fastchat_api --config config/prod.yaml``, taking FastChat's flags as overrides."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import ssl
import sys
from typing import Any, Callable, Sequence

from aiohttp import web

from .app import new_event_loop, runner_options, serving_app, setup_process
from .config import Config, ConfigError, load_config


def _json_list(flag: str) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a JSON list, e.g. '[\"*\"]'") from None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise argparse.ArgumentTypeError(f"{flag} takes a JSON list of strings")
        return parsed
    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fastchat_api",
        description="OpenAI-compatible API server for FastChat controllers and workers.",
    )
    parser.add_argument("--config", help="YAML configuration file (defaults built in when absent)")
    parser.add_argument("--host", help="bind address (server.host)")
    parser.add_argument("--port", type=int, help="bind port (server.port)")
    parser.add_argument("--controller-address", help="FastChat controller URL (controller.address)")
    parser.add_argument("--api-keys", help="comma-separated accepted keys (auth.api_keys)")
    parser.add_argument("--allow-credentials", action="store_true", default=None,
                        help="CORS: allow credentials (cors.allow_credentials)")
    parser.add_argument("--allowed-origins", type=_json_list("--allowed-origins"),
                        help="CORS origins as a JSON list (cors.allowed_origins)")
    parser.add_argument("--allowed-methods", type=_json_list("--allowed-methods"),
                        help="CORS methods as a JSON list (cors.allowed_methods)")
    parser.add_argument("--allowed-headers", type=_json_list("--allowed-headers"),
                        help="CORS headers as a JSON list (cors.allowed_headers)")
    parser.add_argument("--ssl", action="store_true", default=None,
                        help="serve TLS with the files named by SSL_KEYFILE and SSL_CERTFILE (server.ssl)")
    return parser.parse_args(argv)


def _api_keys(value: str | None) -> list[str] | None:
    """``--api-keys k1,k2``; one that names no key (``--api-keys "$UNSET"``) would turn the key
    check off, so it stops the start-up instead."""
    if value is None:
        return None
    keys = [key.strip() for key in value.split(",") if key.strip()]
    if not keys:
        raise ConfigError(f"--api-keys: {value!r} names no key (an unset variable?); give one or "
                          "more keys separated by commas, or leave the flag out for no key check")
    return keys


def overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags the command line gave, as config sections: they win over the file."""
    flags = {
        ("server", "host"): args.host,
        ("server", "port"): args.port,
        ("server", "ssl"): args.ssl,
        ("controller", "address"): args.controller_address,
        ("auth", "api_keys"): _api_keys(args.api_keys),
        ("cors", "allow_credentials"): args.allow_credentials,
        ("cors", "allowed_origins"): args.allowed_origins,
        ("cors", "allowed_methods"): args.allowed_methods,
        ("cors", "allowed_headers"): args.allowed_headers,
    }
    sections: dict[str, dict[str, Any]] = {}
    for (section, key), value in flags.items():
        if value is not None:
            sections.setdefault(section, {})[key] = value
    return sections


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """TLS from ``SSL_KEYFILE``/``SSL_CERTFILE``, as FastChat's ``--ssl`` does."""
    if not config.server.ssl:
        return None
    try:
        keyfile, certfile = os.environ["SSL_KEYFILE"], os.environ["SSL_CERTFILE"]
    except KeyError as missing:
        raise ConfigError(f"server.ssl: the environment variable {missing} is not set") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"server.ssl: cannot load {certfile} / {keyfile}: {exc}") from None
    return context


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config, overrides(args))
        context = ssl_context(config)
        app = serving_app(config)
    except ConfigError as exc:
        print(f"fastchat_api: {exc}", file=sys.stderr)
        return 2
    setup_process(config)
    try:
        web.run_app(
            app,
            host=config.server.host,
            port=config.server.port,
            ssl_context=context,
            print=logging.getLogger("fastchat_api").info,
            backlog=2048,
            loop=new_event_loop(config),  # gunicorn's default; 128 overflows under bursts of connections
            **runner_options(config),
        )
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        print(f"fastchat_api: cannot listen on {config.server.host}:{config.server.port}: "
              f"{os.strerror(exc.errno)}", file=sys.stderr)
        return 1
    return 0


#: What binding the listening socket fails with: the port is taken, the address is not this
#: host's, a port below 1024 without the right.
_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


if __name__ == "__main__":
    sys.exit(main())
