"""Llama 3.1's JSON tool format (``llama3_json``), for llama-3 templates: the function
definitions as JSON in the system turn, a call answered as ``{"name": ..., "parameters":
{...}}``, results in an ``ipython`` turn. Calls are read as the ``json`` format reads them."""

from __future__ import annotations

from typing import Sequence

from .base import Result
from .jsonformat import JSONFormat


class Llama3JSON(JSONFormat):
    name = "llama3_json"
    arguments_key = "parameters"
    result_role = "ipython"
    instruction = (
        "You can call functions, described by these JSON objects (one per line):\n{tools}\n"
        "To call a function, answer with nothing but a JSON object "
        '{"name": <function name>, "parameters": <the arguments as a JSON object>}. '
        "Otherwise, answer in plain text."
    )

    def results_text(self, results: Sequence[Result]) -> str:
        return "\n".join(result.content for result in results)
