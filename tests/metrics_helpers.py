"""Reading a running instance's /metrics the way Prometheus does."""
from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


async def scrape(url: str) -> Samples:
    """Every sample of ``GET url/metrics``: (sample name, its labels) → value."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        assert resp.status == 200, resp.status
        text = await resp.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, default: float | None = 0.0, **labels: str) -> float:
    """One sample's value (``default`` when the series is not there)."""
    found = samples.get((name, frozenset(labels.items())))
    if found is None:
        assert default is not None, f"no sample {name}{labels}"
        return default
    return found


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}
