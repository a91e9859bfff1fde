"""Every job plans with windows, timeouts and watermark delays of 100 s and more.

``INTERVAL '120' SECOND`` does not parse (SECOND(2)); the jobs write every interval with
``chorus_flink.tables.interval``. Flink's planner checks each job's SQL here (``explain``,
in flink/'s environment with the connector jar), without running it or reaching Kafka.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services.flink import FlinkEnv

pytestmark = pytest.mark.integration

PLAN = """
import json, os, sys
from chorus_flink.run import JAR_ENV, load_job, table_environment

jars = [j for j in os.environ.get(JAR_ENV, "").split(";") if j]
for name, config in json.loads(sys.argv[1]).items():
    plan = load_job(name).build(table_environment(jars, {}), config).explain()
    print(f"planned {name}: {len(plan)} characters", flush=True)
"""

KAFKA = {"bootstrap_servers": "127.0.0.1:9", "watermark_delay_seconds": "100"}
LONG = {
    "trading": {**KAFKA, "window_seconds": "240", "slide_seconds": "120"},
    "maintenance": {**KAFKA, "watermark_delay_seconds": "150"},
    "customer_service": {**KAFKA, "reply_timeout_seconds": "3600"},
    "traffic": {**KAFKA, "window_seconds": "120", "neighbours": json.dumps({"a": ["b"]})},
    "icu": {**KAFKA, "window_seconds": "120", "missing_after_seconds": "360"},
    "windowed_counts": {
        "bootstrap_servers": "127.0.0.1:9",
        "source_topic": "in",
        "sink_topic": "out",
        "window_seconds": "120",
        "watermark_delay_seconds": "100",
    },
}


def test_every_job_plans_with_intervals_of_100_seconds_and_more(
    flink: FlinkEnv, tmp_path: Path
) -> None:
    script = tmp_path / "plan_jobs.py"
    script.write_text(PLAN)
    result = flink.run_job(str(script), [json.dumps(LONG)], timeout=300)
    planned = [line for line in result.stdout.splitlines() if line.startswith("planned ")]
    assert [line.split()[1].rstrip(":") for line in planned] == list(LONG), result.stdout


DEFAULTS = """
import json, sys
from chorus_flink.run import DEFAULTS, table_environment

for options in json.loads(sys.argv[1]):
    config = table_environment([], options).get_config()
    print("set", json.dumps({key: config.get(key, "unset") for key in DEFAULTS}), flush=True)
"""
OWN = {
    "pipeline.object-reuse": "false",
    "execution.buffer-timeout.interval": "100 ms",
    "pipeline.auto-watermark-interval": "200 ms",
}


def test_the_defaults_apply_unless_the_options_set_them(flink: FlinkEnv, tmp_path: Path) -> None:
    script = tmp_path / "defaults.py"
    script.write_text(DEFAULTS)
    options = [{}, OWN]
    result = flink.run_job(str(script), [json.dumps(options)], timeout=120)
    found = [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("set ")]
    assert found == [
        {
            "pipeline.object-reuse": "true",
            "execution.buffer-timeout.interval": "10 ms",
            "pipeline.auto-watermark-interval": "50 ms",
        },
        OWN,
    ], result.stdout
