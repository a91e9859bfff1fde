"""``chorus dev up <domain>`` run to completion as a subprocess, judged by its JSON report.

Each run starts the MCP servers, the domain's Flink job(s) and its agents as processes from
the domain's manifests and feeds the scenario; the report says whether every injected
incident was detected (a signal about its entity) and acted on (an action whose audit chain
starts at such a signal), whether every action's chain reaches a signal, and whether any
action was *unprompted* (no incident explains it).

One run per domain (trading's is the one that starts its own Kafka). Each also checks what
a quiet run (``--quiet``, no incident) used to check in a run of its own: no action without
an incident. Every entity but the incident's sees normal traffic for the whole run, and the
incident's own entity until the incident, over at least as much event time as the quiet run
fed (:data:`EVENT_SECONDS`); an action about any of them, or about the incident's entity
before it, is unprompted and fails the run. The quiet plan and the quiet report are
unit-tested in ``test_dev_up_parts.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chorus_agents.dev.scenarios import scenario

from tests.services.base import REPO
from tests.services.kafka import KafkaBroker

CHORUS = str(Path(sys.executable).with_name("chorus"))
DOMAINS = [
    d
    for d in ("trading", "support", "maintenance", "traffic", "icu")
    if (REPO / "agents" / d / "deploy").is_dir()
]
EVENT_SECONDS = {
    "trading": 120,
    "support": 2700,
    "maintenance": 300,
    "traffic": 300,
    "icu": 2100,
}
"""Event time fed per run: at least what the quiet runs fed (trading 60 s, support 900 s,
maintenance and traffic 300 s, icu 1,800 s), and the incident's whole course (trading's at
half of it, maintenance's and traffic's at a quarter, icu's at 600 s and high from about
1,900 s on, so that its model both declines a medium band and acts on a high one; support's
angry customers write from 300 and 900 s on, waiting longer each time, for most of the
scenario's 2,700 s)."""
SPEED_UP = 6
"""Each run feeds at six times its scenario's default pace (the event times, and so every
window, watermark and incident, stay the same; the scenarios are sparse: support's whole
2,700 s are 41 records). The demo's own pace is the default."""
INCIDENT_DOMAINS = [d for d in DOMAINS if d != "trading"]
"""Trading's run is the one that starts its own Kafka (the first test: the longest)."""


def dev_up(tmp_path: Path, domain: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    report = tmp_path / f"{domain}.json"
    speed = str(scenario(domain).speed * SPEED_UP)
    command = [CHORUS, "dev", "up", domain, "--no-live", "--report-json", str(report)]
    result = subprocess.run(
        [*command, "--speed", speed, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
    output = result.stdout + result.stderr
    assert report.exists(), f"no report (exit {result.returncode}):\n{output}"
    loaded: dict[str, Any] = json.loads(report.read_text())
    loaded["exit_code"] = result.returncode
    loaded["output"] = output
    return loaded


def assert_acted_on_every_incident_and_on_nothing_else(report: dict[str, Any]) -> None:
    assert report["incidents"], report["output"]
    for incident in report["incidents"]:
        assert incident["injected"], incident
        assert incident["detected"], (incident, report["signals"])
        assert incident["acted"], (incident, report["audit_by_agent_kind"])
        assert incident["action_seconds"] >= 0
    assert report["actions"] > 0
    assert report["actions_without_signal"] == []
    assert report["unprompted_actions"] == [], report["audit_by_agent_kind"]
    # the back end's own records (read through its MCP server): nothing done twice
    assert report["effects"] is not None and report["duplicate_effects"] == {}, report["output"]
    assert report["ok"] and report["exit_code"] == 0, report["output"]


def assert_the_model_declined_and_acted(report: dict[str, Any]) -> None:
    """The domain's model turned down something its pre-filter passed, and acted on
    something, as the report counts them (each domain's default script declines one)."""
    decisions = report["model_decisions"]
    assert sum(d["declined"] for d in decisions.values()) >= 1, decisions
    assert sum(d["acted"] for d in decisions.values()) >= 1, decisions


@pytest.mark.e2e
def test_dev_up_starts_its_own_kafka_when_given_none(tmp_path: Path) -> None:
    report = dev_up(tmp_path, "trading", "--event-seconds", str(EVENT_SECONDS["trading"]))
    assert [i["entity"] for i in report["incidents"]] == ["ACME"]
    assert_acted_on_every_incident_and_on_nothing_else(report)
    assert_the_model_declined_and_acted(report)


@pytest.mark.e2e
@pytest.mark.parametrize("domain", INCIDENT_DOMAINS)
def test_every_injected_incident_is_acted_on_and_nothing_else(
    kafka: KafkaBroker, tmp_path: Path, domain: str
) -> None:
    report = dev_up(
        tmp_path,
        domain,
        "--event-seconds",
        str(EVENT_SECONDS[domain]),
        "--bootstrap-servers",
        kafka.bootstrap_servers,
    )
    assert_acted_on_every_incident_and_on_nothing_else(report)
    assert_the_model_declined_and_acted(report)
