"""The customer-service job in the mini-cluster: scripted chats in, exactly the escalation
signals and dead letters out.

Trend over the last 2 customer messages, a drop of 0.5 or a fall below -0.5 escalates, an
agent must answer within 60 s, and a new conversation within 160 s of the customer's last
one is a repeat contact. The expected signals are worked out by hand beside the script.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.flink.scenario import JobScenario, expected, iso
from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker

pytestmark = pytest.mark.integration

SUPPORT = JobScenario("customer_service", "support", "messages_topic")

BASE = datetime(2026, 1, 1, 9, 0, 0)
ANGRY = "This is terrible and useless, I am furious"
# terrible -3, useless -3; then, in its own clause, furious -3: -9 squashed (s / sqrt(s^2 + 15))
ANGRY_SENTIMENT = round(-9 / math.sqrt(81 + 15), 4)


def at(minutes: int, seconds: int) -> datetime:
    return BASE + timedelta(minutes=minutes, seconds=seconds)


# (conversation, customer, role, sentiment or None, text, time)
CHAT: list[tuple[str, str, str, float | None, str, datetime]] = [
    ("c1", "u1", "customer", 0.2, "Hi, my router is broken", at(0, 0)),
    ("c1", "u1", "agent", None, "Sorry to hear that, let me check", at(0, 20)),
    ("c2", "u2", "customer", -0.7, "hello", at(0, 30)),  # first message below the floor
    ("c1", "u1", "customer", 0.6, "ok thanks", at(0, 40)),  # trend 0.4
    ("c1", "u1", "agent", None, "Please restart it", at(1, 0)),
    ("c2", "u2", "agent", None, "How can I help?", at(1, 0)),
    ("c1", "u1", "customer", -0.9, "did not help", at(1, 10)),  # trend -0.15: drop of 0.55
    ("c1", "u1", "customer", None, ANGRY, at(1, 30)),  # trend below the floor, and a drop
    # no agent answers c1 until 09:03:00: the wait from 09:01:10 is too long
    ("c3", "u1", "customer", 0.1, "me again", at(2, 30)),  # 150 s after c1 opened: repeat
    ("c1", "u1", "agent", None, "Back now, sorry", at(3, 0)),
    ("c3", "u1", "agent", None, "Hello again", at(3, 10)),
    ("c4", "u2", "customer", 0.3, "new question", at(3, 20)),  # 170 s after c2: no repeat
    # nobody ever answers c4: its wait runs out at 09:04:20, after the last message
]


def message(
    conversation: str, customer: str, role: str, sentiment: float | None, text: str, when: datetime
) -> str:
    record: dict[str, Any] = {
        "conversation_id": conversation,
        "customer_id": customer,
        "role": role,
        "text": text,
        "event_time": iso(when),
    }
    if sentiment is not None:
        record["sentiment"] = sentiment
    return json.dumps(record)


def script() -> tuple[list[str | None], list[tuple[str, str | None]]]:
    """The raw values in order, and the dead letters expected, as (reason, payload)."""
    values: list[str | None] = [message(*m) for m in CHAT]
    now = iso(at(3, 15))
    good = {
        "conversation_id": "c9",
        "customer_id": "u9",
        "role": "customer",
        "text": "x",
        "event_time": now,
    }
    bad: list[tuple[str | None, str]] = [
        ("oops", "invalid_json"),
        (
            json.dumps({k: v for k, v in good.items() if k != "conversation_id"}),
            "missing_field:conversation_id",
        ),
        (json.dumps({**good, "customer_id": " "}), "invalid_field:customer_id"),
        (json.dumps({**good, "role": "bot"}), "invalid_field:role"),
        (json.dumps({k: v for k, v in good.items() if k != "text"}), "missing_field:text"),
        (json.dumps({**good, "sentiment": 2}), "invalid_field:sentiment"),
        (json.dumps({**good, "sentiment": "bad"}), "invalid_field:sentiment"),
        (json.dumps({**good, "event_time": "2026-13-45"}), "invalid_field:event_time"),
        # An agent reply to c1 stamped 09:01:20, arriving last: it would end c1's long wait.
        (message("c1", "u1", "agent", None, "on it", at(1, 20)), "late"),
    ]
    values += [value for value, _ in bad]
    return values, [(reason, value) for value, reason in bad]


def offset(when: datetime, conversation: str) -> int:
    """The message's offset in the one-partition topic: its index in the script."""
    return next(i for i, m in enumerate(CHAT) if m[5] == when and m[0] == conversation)


def drop(
    conversation: str,
    customer: str,
    when: datetime,
    sentiment: float,
    trend: float,
    previous: float | None,
    reason: str,
) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {
        "customer_id": customer,
        "sentiment": sentiment,
        "trend": trend,
        "reason": reason,
    }
    if previous is not None:
        data["previous_trend"] = previous
    suffix = f"0-{offset(when, conversation)}"
    return expected("sentiment_drop", conversation, when, data, id_suffix=suffix)


def wait(conversation: str, customer: str, when: datetime) -> tuple[str, dict[str, Any]]:
    data = {"customer_id": customer, "message_time": when.isoformat(), "timeout_seconds": 60}
    return expected("long_wait", conversation, when + timedelta(seconds=60), data)


def expected_signals() -> dict[str, dict[str, Any]]:
    return dict(
        [
            drop("c2", "u2", at(0, 30), -0.7, -0.7, None, "below_floor"),
            drop("c1", "u1", at(1, 10), -0.9, -0.15, 0.4, "trend_drop"),
            drop(
                "c1",
                "u1",
                at(1, 30),
                ANGRY_SENTIMENT,
                (-0.9 + ANGRY_SENTIMENT) / 2,
                -0.15,
                "trend_drop,below_floor",
            ),
            wait("c1", "u1", at(1, 10)),
            wait("c4", "u2", at(3, 20)),
            expected(
                "repeat_contact",
                "c3",
                at(2, 30),
                {
                    "customer_id": "u1",
                    "previous_conversation_id": "c1",
                    "previous_opened": at(0, 0).isoformat(),
                    "gap_seconds": 150,
                },
            ),
        ]
    )


def test_customer_service_job_escalations_and_dead_letters(
    kafka: KafkaBroker, flink: FlinkEnv
) -> None:
    values, expected_dead = script()
    outcome = SUPPORT.run(
        kafka,
        flink,
        values,
        {
            "watermark_delay_seconds": "5",
            "trend_messages": "2",
            "drop_threshold": "0.5",
            "sentiment_floor": "-0.5",
            "reply_timeout_seconds": "60",
            "repeat_contact_seconds": "160",
        },
    )
    outcome.assert_dead_letters(expected_dead)
    outcome.assert_signals(expected_signals())
