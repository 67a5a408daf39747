"""Tool calling for FastChat workers, which only generate text: the gateway renders the prompt,
so it writes the tools into it in the format the model was trained on and reads the calls back.

``guide_for`` picks the format (the model's ``models.<name>.tool_format``, else the
worker's conversation template: chatml-family templates take ``hermes``, llama-3 ones
``llama3_json``, mistral ones ``mistral``, any other ``json``) and builds the request's
:class:`~fastchat_api.tools.guide.ToolGuide`; ``tools.stream`` relays a streamed answer.
"""

from __future__ import annotations

from typing import Callable

from .. import errors
from ..config import Config, ModelConfig
from ..conversation import Template
from ..protocol import Tools
from .base import Format
from .guide import ToolGuide
from .hermes import Hermes
from .jsonformat import JSONFormat
from .llama3 import Llama3JSON
from .mistral import Mistral

__all__ = ["FORMATS", "ToolGuide", "format_of", "guide_for"]

FORMATS: dict[str, Format] = {form.name: form for form in (Hermes(), Llama3JSON(), Mistral(), JSONFormat())}


def format_of(template: Template) -> str:
    """The tool format a conversation template implies (README "Tool calling")."""
    if template.style == "CHATML":
        return "hermes"
    if template.style == "LLAMA3":
        return "llama3_json"
    if template.style == "LLAMA2" and "mistral" in template.name.lower():
        return "mistral"
    return "json"


def refused(field: str) -> errors.APIError:
    """The 400 for tools sent to a model whose format is ``none``: the refusal of a gateway
    without tool calling, word for word."""
    return errors.invalid_request(
        f"'{field}' is not supported: FastChat workers have no tool or function calling, so the "
        "model cannot honour it. Remove it, or describe the tools in the messages.",
        param=field, code="unsupported_parameter",
    )


def guide_for(tools: Tools, model: str, config: Config) -> Callable[[Template], ToolGuide | None]:
    """The request's guide, once its worker's template is known; None for a model whose
    format is ``none`` and a chat that offers no tools (its history renders as plain turns).
    The model's own settings (``models.<name>.tool_format``, ``tool_instruction``) win over
    its template's format and ``tools.instructions``."""
    own = config.models.get(model) or ModelConfig()

    def make(template: Template) -> ToolGuide | None:
        name = own.tool_format or format_of(template)
        if name == "none":
            if tools.functions:
                raise refused("functions" if tools.legacy else "tools")
            return None
        form = FORMATS[name]
        instruction = own.tool_instruction or config.tools.instructions.get(name) or form.instruction
        return ToolGuide(form, tools, instruction)

    return make
