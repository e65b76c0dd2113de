"""Reading a Prometheus scrape in tests: `{(sample name, labels): value}`."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


def labels(**values: str) -> Labels:
    return tuple(sorted(values.items()))


def parse(text: str) -> Samples:
    return {
        (sample.name, labels(**sample.labels)): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def series(samples: Samples, name: str, **fixed: str) -> dict[Labels, float]:
    """Every sample of `name` (whose labels include `fixed`), keyed by its labels."""
    return {
        key: value
        for (sample, key), value in samples.items()
        if sample == name and all(dict(key).get(k) == v for k, v in fixed.items())
    }


def without(keyed: dict[Labels, float], **dropped: str) -> dict[Labels, float]:
    return {
        key: value
        for key, value in keyed.items()
        if all(dict(key).get(k) != v for k, v in dropped.items())
    }
