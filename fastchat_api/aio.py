"""asyncio helpers the pipelines share."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Iterable, TypeVar

T = TypeVar("T")


async def gather_or_cancel(aws: Iterable[Awaitable[T]]) -> list[T]:
    """``gather`` that cancels the rest as soon as one fails, so no worker runs for nobody.

    One awaitable (the usual ``n = 1``) is awaited in place: no task, no gather.
    """
    aws = list(aws)
    if len(aws) == 1:
        return [await aws[0]]
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
