"""The monitoring kit in monitoring/: Prometheus rules that promtool accepts and
whose unit tests pass, and rules and a Grafana dashboard that name only
metrics the panel's /metrics really serves (real database and Redis)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "monitoring" / "prometheus"
DASHBOARD = ROOT / "monitoring" / "grafana" / "hotline.json"
# names PromQL uses that are not metrics
PROMQL = {"sum", "by", "or", "vector", "increase", "rate", "up", "and", "on", "without"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool missing: ./setup.sh --deps-only installs Debian's prometheus")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=PROM)


def test_rules_are_valid_and_fire_as_their_unit_tests_say():
    checked = promtool("check", "rules", "hotline.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "hotline.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = promtool("check", "config", "prometheus.example.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def _expressions() -> list[str]:
    rules = yaml.safe_load((PROM / "hotline.rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dash = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    return exprs


def _names(expr: str) -> set[str]:
    expr = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", expr)  # labels, strings, ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)  # grouping labels
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in PROMQL}


async def test_rules_and_dashboard_name_only_metrics_that_exist(panel):
    r = await panel.client.get("/metrics")
    assert r.status == 200
    text = await r.text()
    served: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        served.add(name)
        if kind == "counter":
            served.add(f"{name}_total")
    used = set().union(*map(_names, _expressions()))
    assert used - served == set(), f"named but not served: {sorted(used - served)}"
    # the service gauges carry the readiness checks' verdicts
    assert 'hotline_dependency_up{dependency="database",required="yes"} 1.0' in text
    assert 'hotline_dependency_up{dependency="redis",required="yes"} 1.0' in text
    assert re.search(r"^hotline_tickets_overdue 0\.0$", text, re.M)
    assert re.search(r"^process_resident_memory_bytes \S+$", text, re.M)
