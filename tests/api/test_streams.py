"""``chorus_api.streams.flink_deployment``: the Flink settings every stream's job runs with."""

from __future__ import annotations

import pytest
from chorus_api.agent import Stream
from chorus_api.streams import FlinkRuntime, flink_deployment, resolve_stream

pytestmark = pytest.mark.unit


def deployment() -> dict[str, object]:
    stream = Stream.model_validate(
        {"name": "signals", "job": "chorus_flink.jobs.trading", "parallelism": 2}
    )
    return flink_deployment(
        resolve_stream(stream),
        FlinkRuntime(image="chorus-flink:test"),
        name="trader-signals",
        namespace="trading",
        labels={},
    )


def test_watermarks_are_periodic_in_production() -> None:
    configuration = deployment()["spec"]["flinkConfiguration"]  # type: ignore[index]
    # the jobs default to a watermark per record (deterministic lateness, for the tests);
    # on a cluster Flink's own periodic emission costs an eighth less CPU per record
    assert configuration["chorus.watermark.emit-strategy"] == "on-periodic"
    assert configuration["execution.checkpointing.mode"] == "EXACTLY_ONCE"
