"""Prometheus scrapes read as samples by name and labels."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape's text by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: Any, **headers: str) -> Samples:
    """``samples`` of the test client's ``GET /metrics``, which must answer 200 in text."""
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    return samples(await resp.text())


def value(found: Samples, name: str, **labels: str) -> float:
    """The sample with exactly these labels; 0 where there is none."""
    return found.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
