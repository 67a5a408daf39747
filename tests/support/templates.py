"""Conversation templates as a worker sends them (``/worker_get_conv_template``'s ``conv``),
for the stand-in to serve: fschat 0.2.36's own, and llama-3 as FastChat HEAD's worker sends it
(0.2.36 has none)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

LLAMA3_CONV = {
    "name": "llama-3",
    "system_template": "<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>",
    "system_message": "", "roles": ["user", "assistant"], "messages": [], "offset": 0,
    "sep_style": 8,  # LLAMA3 in HEAD's numbering
    "sep": "", "sep2": None, "stop_str": "<|eot_id|>", "stop_token_ids": [128001, 128009],
    "system_message_vision": "", "max_image_size_mb": None,  # what tells HEAD's numbering
}


def fastchat_conv(template: str, **changes: Any) -> dict[str, Any]:
    """fschat 0.2.36's template ``template`` as its worker sends it, with ``changes``."""
    from fastchat import conversation

    conv = conversation.get_conv_template(template)
    return json.loads(json.dumps(dataclasses.asdict(conv) | {"sep_style": int(conv.sep_style)})) | changes
