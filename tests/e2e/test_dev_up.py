"""``chorus dev up <domain>`` run to completion as a subprocess, judged by its JSON report.

Each run starts the MCP servers, the domain's Flink job(s) and its agents as processes from
the domain's manifests and feeds the scenario; the report says whether every injected
incident was detected (a signal about its entity) and acted on (an action whose audit chain
starts at such a signal), and whether every action's chain reaches a signal.

Every domain has an incident run (trading's is the one that starts its own Kafka) and a
shorter quiet run; each run is about two minutes, most of it starting the Flink mini-cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services.base import REPO
from tests.services.kafka import KafkaBroker

CHORUS = str(Path(sys.executable).with_name("chorus"))
DOMAINS = [
    d
    for d in ("trading", "support", "maintenance", "traffic", "icu")
    if (REPO / "agents" / d / "deploy").is_dir()
]
QUIET_EVENT_SECONDS = {
    "trading": 60,
    "support": 900,
    "maintenance": 300,
    "traffic": 300,
    "icu": 1800,
}
"""A quiet run is shorter than the domain's scenario (about 15 s of feed at its speed):
what it checks, no action without an incident, needs no incident's full course."""
INCIDENT_DOMAINS = [d for d in DOMAINS if d != "trading"]
"""Trading's incident run is the one that starts its own Kafka (the last test)."""


def dev_up(tmp_path: Path, domain: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    report = tmp_path / f"{domain}.json"
    result = subprocess.run(
        [CHORUS, "dev", "up", domain, "--no-live", "--report-json", str(report), *args],
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


@pytest.mark.e2e
@pytest.mark.parametrize("domain", INCIDENT_DOMAINS)
def test_every_injected_incident_is_detected_and_acted_on(
    kafka: KafkaBroker, tmp_path: Path, domain: str
) -> None:
    report = dev_up(tmp_path, domain, "--bootstrap-servers", kafka.bootstrap_servers)
    assert report["incidents"], report["output"]
    for incident in report["incidents"]:
        assert incident["injected"], incident
        assert incident["detected"], (incident, report["signals"])
        assert incident["acted"], (incident, report["audit_by_agent_kind"])
        assert incident["action_seconds"] >= 0
    assert report["actions"] > 0
    assert report["actions_without_signal"] == []
    assert report["ok"] and report["exit_code"] == 0, report["output"]


@pytest.mark.e2e
@pytest.mark.parametrize("domain", DOMAINS)
def test_a_quiet_run_leads_to_no_action(kafka: KafkaBroker, tmp_path: Path, domain: str) -> None:
    report = dev_up(
        tmp_path,
        domain,
        "--quiet",
        "--event-seconds",
        str(QUIET_EVENT_SECONDS[domain]),
        "--bootstrap-servers",
        kafka.bootstrap_servers,
    )
    assert report["incidents"] == []
    assert report["records_fed"] > 0
    assert report["actions"] == 0, report["audit_by_agent_kind"]
    assert report["ok"] and report["exit_code"] == 0, report["output"]


@pytest.mark.e2e
def test_dev_up_starts_its_own_kafka_when_given_none(tmp_path: Path) -> None:
    report = dev_up(tmp_path, "trading", "--event-seconds", "120")
    assert [i["detected"] and i["acted"] for i in report["incidents"]] == [True]
    assert report["actions"] > 0
    assert report["actions_without_signal"] == []
    assert report["ok"] and report["exit_code"] == 0, report["output"]
