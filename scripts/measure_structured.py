"""How often a small model needs the gateway's retries to write the JSON a request asks for.

Starts the real-model stack (FastChat's controller, its worker serving SmolLM2-135M-Instruct,
our server; ``devstack.realmodels``), sends each request below ``--rounds`` times, one at a
time, at the client's default temperature (FastChat's 0.7), and reads the gateway's
``fastchat_api_guided_attempts_total`` after each: how many attempts each took, and how many
ended in the 502. The figure README.rst quotes comes from this script::

    python scripts/measure_structured.py --rounds 20
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.realmodels import CHAT_MODEL, default_cache_dir, prepare_chat_model  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from devstack.worker import SMOLLM2_TEMPLATE  # noqa: E402

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
ORDER = {"type": "object", "additionalProperties": False, "required": ["item", "size", "extras"],
         "properties": {"item": {"type": "string"}, "size": {"enum": ["small", "medium", "large"]},
                        "extras": {"type": "array", "items": {"type": "string"}}}}
REQUESTS = {
    "json_object": ("List three colours as a JSON object.", {"type": "json_object"}),
    "person (strict)": ("Invent a person: their name and age.",
                        {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON,
                                                                "strict": True}}),
    "order (strict, enum, array)": ("I'd like a large latte with oat milk and a cookie.",
                                    {"type": "json_schema", "json_schema": {"name": "order", "schema": ORDER,
                                                                            "strict": True}}),
}


def attempts(gateway: str) -> collections.Counter[str]:
    """The guided-attempt outcomes counted so far, by outcome."""
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    counts: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        if line.startswith("fastchat_api_guided_attempts_total{"):
            outcome = line.split('outcome="')[1].split('"')[0]
            counts[outcome] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="times each request is sent")
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    model = prepare_chat_model(default_cache_dir())
    with tempfile.TemporaryDirectory() as directory, Stack(directory) as stack:
        stack.start_controller()
        stack.start_worker(model, model_name=CHAT_MODEL, conv_template=SMOLLM2_TEMPLATE,
                           module="devstack.worker")
        stack.start_gateway()
        gateway = stack.gateway.url
        client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="EMPTY", max_retries=0, timeout=600)
        results = {}
        for label, (prompt, response_format) in REQUESTS.items():
            taken: collections.Counter[int] = collections.Counter()
            failed = 0
            started = time.monotonic()
            for _ in range(args.rounds):
                before = attempts(gateway)
                try:
                    completion = client.chat.completions.create(
                        model=CHAT_MODEL, messages=[{"role": "user", "content": prompt}],
                        response_format=response_format, max_tokens=args.max_tokens)
                    json.loads(completion.choices[0].message.content)
                except openai.InternalServerError:
                    failed += 1
                spent = attempts(gateway) - before
                taken[sum(spent.values())] += 1
            results[label] = {"attempts": dict(sorted(taken.items())), "failed": failed,
                              "seconds": round(time.monotonic() - started, 1)}
            print(label, results[label], flush=True)
        print(json.dumps({"rounds": args.rounds, "max_tokens": args.max_tokens, "results": results}, indent=2))


if __name__ == "__main__":
    main()
