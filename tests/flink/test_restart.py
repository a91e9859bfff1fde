"""Exactly once across a crash: the trading job, unbounded, killed and restarted from its last
retained checkpoint, writes every signal and dead letter exactly once.

The first run reads the first part of the trading script (tests/flink/test_trading.py) with a
checkpoint every second, until its signals are committed; then the driver and its
mini-cluster JVM are SIGKILLed, as a lost pod would be. The rest of the script is produced
while it is down, plus one trade an hour later (another symbol) whose watermark closes every
window. The second run restores the retained checkpoint (``execution.state-recovery.path``):
Kafka offsets, window and OVER state, and the sinks' transactions. A ``read_committed``
consumer must then see the same signals as the independent computation for one
uninterrupted run, each once, and every dead letter once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.flink.scenario import (
    Topics,
    assert_signals,
    dead_letters,
    iso,
    kafka_config,
    produce,
    signals,
)
from tests.flink.test_trading import BASE, PARAMETERS, expected_outcome, script
from tests.services.flink import FlinkEnv, RunningJob
from tests.services.kafka import KafkaBroker

pytestmark = pytest.mark.integration

SENTINEL = json.dumps(
    {
        "symbol": "ZZZZ",  # alone in its windows, which never close: it emits nothing
        "price": 1.0,
        "quantity": 1,
        "event_time": iso(BASE + timedelta(hours=1)),
    }
)


def wait_for(
    check: Callable[[], bool], *, job: RunningJob, what: str, timeout: float = 240.0
) -> None:
    """Polls ``check`` every second; fails if the job ends or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not check():
        job.check_running()
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f}s\n{job.text()[-4000:]}")
        time.sleep(1.0)


def latest_checkpoint(root: Path) -> Path:
    """The newest completed checkpoint under ``root`` (``<job id>/chk-<n>`` with metadata)."""
    done = [m.parent for m in root.glob("*/chk-*/_metadata")]
    assert done, f"no completed checkpoint in {root}"
    return max(done, key=lambda p: int(p.name.removeprefix("chk-")))


def test_trading_job_restarted_from_a_checkpoint_after_a_crash_emits_each_signal_once(
    kafka: KafkaBroker, flink: FlinkEnv, tmp_path: Path
) -> None:
    topics = Topics.create(kafka, "restart")
    values, reasons = script()
    expected, expected_letters = expected_outcome(values, reasons)

    # Split right after a malformed record in the middle: once its dead letter is committed,
    # the checkpoint that committed it covers the whole first part, so the second run starts
    # exactly at the split. (Watermarks are not in checkpoints; a late record first after
    # the restore point would meet no watermark and count as on time.)
    split = 1 + max(i for i, r in reasons.items() if r != "late" and i < len(values) // 2)
    assert split not in reasons
    first_letters = [(r, values[i]) for i, r in sorted(reasons.items()) if i < split]
    first_ids = {
        signal_id
        for signal_id, signal in expected.items()
        if signal["time"] < iso(BASE + timedelta(seconds=20))
    }
    assert first_ids, "the first part must close some windows"

    checkpoints = tmp_path / "checkpoints"
    config: dict[str, Any] = {
        **kafka_config(kafka),
        "trades_topic": topics.input,
        "signals_topic": topics.signals,
        "dead_letter_topic": topics.dead_letters,
        **PARAMETERS,
        "group_id": f"test-restart-{topics.run}",
    }
    options = {
        "execution.checkpointing.interval": "1 s",
        "execution.checkpointing.dir": checkpoints.as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }

    produce(kafka, topics.input, values[:split])
    first = flink.start_chorus_job("trading", config, options=options)
    try:
        wait_for(
            lambda: (
                dead_letters(kafka, topics.dead_letters) == first_letters
                and first_ids <= {s["id"] for s in signals(kafka, topics.signals)}
            ),
            job=first,
            what="first run: the first part's dead letters and early signals committed",
        )
    finally:
        first.kill()
    before = signals(kafka, topics.signals)
    assert {s["id"] for s in before} < set(expected), "the crash must come before the end"

    produce(kafka, topics.input, [*values[split:], SENTINEL])
    restore = latest_checkpoint(checkpoints)
    second = flink.start_chorus_job(
        "trading",
        config,
        options={**options, "execution.state-recovery.path": restore.as_uri()},
    )
    try:
        # Every signal is emitted before the last expected one becomes visible (one sink
        # subtask, transactions committed in order), so once all expected ids are there, any
        # duplicate a replay made is visible too.
        wait_for(
            lambda: (
                set(expected) <= {s["id"] for s in signals(kafka, topics.signals)}
                and len(dead_letters(kafka, topics.dead_letters)) >= len(expected_letters)
            ),
            job=second,
            what="second run: every expected signal and dead letter committed",
        )
    finally:
        second.kill()

    assert_signals(signals(kafka, topics.signals), expected)
    assert dead_letters(kafka, topics.dead_letters) == expected_letters
