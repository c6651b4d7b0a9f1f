"""deploy/grafana/dashboards/collab.json asks only for series a real instance exports, and
shows every metric family it exports: checked against the /metrics of an instance on a real
redis-server after traffic that touches each family (store, errors, rooms, a chat reply,
the bus probe)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_helpers import close, finished, team
from tests.client import eventually
from tests.cluster.harness import RedisServer
from tests.conftest import RunningServer, make_settings
from tests.metrics_helpers import names, scrape, value

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/collab.json"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself when it scrapes
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right"}
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects (not its functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # label matchers, ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = set(re.findall(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(?!\s*\()", text))
    return found - _KEYWORDS


def test_the_promql_reader_finds_series_not_functions():
    expr = ('histogram_quantile(0.95, sum by (le, op) (rate(collab_store_seconds_bucket'
            '{instance=~"$instance",op!="a{b}"}[$__rate_interval]))) / on (x) group_left '
            'count(up{job="collab"} == 1) and bool other_series')
    assert metric_names(expr) == {"collab_store_seconds_bucket", "up", "other_series"}


def queries(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    for variable in dashboard["templating"]["list"]:
        exprs.extend(re.findall(r"label_values\((\w+)", variable["definition"]))
    return exprs


def family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_dashboard_shape():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], f"{panel['title']} has no query"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


async def test_dashboard_queries_only_what_the_server_exports(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    wanted = set().union(*(metric_names(q) for q in queries(dashboard)))
    with RedisServer() as redis:
        settings = make_settings(tmp_path, redis_url=redis.url, chat_offline_delay_ms=0)
        server = await RunningServer(settings).start()
        try:
            await _exercise(server.url)
            # Someone in a room while scraping: room gauges only exist for rooms that do.
            project, owner, _ = await team(server.url)
            try:
                samples = await eventually(lambda: _with_bus_lag(server.url), timeout=20)
                async with aiohttp.ClientSession() as http, \
                        http.get(f"{server.url}/metrics") as resp:
                    families = {f.name
                                for f in text_string_to_metric_families(await resp.text())}
            finally:
                await close(owner)
        finally:
            await server.stop()
    exported = names(samples)
    missing = sorted(wanted - exported - PROMETHEUS_OWN)
    assert not missing, f"the dashboard asks for series the server does not export: {missing}"
    shown = {family(n) for n in wanted}
    unseen = sorted(f for f in families if family(f) not in shown)
    assert not unseen, f"metric families the dashboard does not show: {unseen}"


async def _exercise(url: str) -> None:
    project, owner, (viewer,) = await team(url, "viewer")
    try:
        taken = await viewer.err("auth:update", {"username": owner.user["username"],
                                                 "currentPassword": "correct horse"})
        assert taken["code"] == "conflict"  # a store error, counted as such
        await owner.ok("auth:login", {"email": owner.user["email"],
                                      "password": "correct horse"})
        conv = await owner.ok("conversation:create", {"projectId": project["id"]})
        await owner.ok("conversation:join", {"id": conv["id"]})
        for content in ("hi", "and again"):  # the second one's request starts early
            ack = await owner.ok("message:send", {"conversationId": conv["id"],
                                                  "content": content})
            assert (await finished(owner, ack["replyId"]))[0] == "message:done"
    finally:
        await close(owner, viewer)


async def _with_bus_lag(url: str):
    samples = await scrape(url)
    return samples if value(samples, "collab_bus_lag_seconds_count") >= 1 else None
