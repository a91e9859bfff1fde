"""Escalation triggers exactly as ``chorus_flink.jobs.customer_service`` writes them.

CloudEvents envelopes keyed by the conversation id, with the job's deterministic ids
(``kind:subject:time``, plus ``<partition>-<offset>`` for a sentiment drop), ``time`` as
``2026-01-05T09:40:40.000Z``, timestamps inside ``data`` without a zone, and null data
fields left out (see ``tests/flink/test_customer_service.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

SOURCE = "chorus_flink.jobs.customer_service"
START = datetime(2026, 1, 5, 9, 0)
"""Event time zero of the scenarios (UTC, as the job's naive timestamps are)."""


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def iso(when: datetime) -> str:
    """The envelope's ``time``: milliseconds and ``Z``."""
    return when.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def envelope(
    kind: str, conversation: str, when: datetime, data: dict[str, Any], *, suffix: str = ""
) -> dict[str, Any]:
    time = iso(when)
    return {
        "specversion": "1.0",
        "id": f"{kind}:{conversation}:{time}{suffix}",
        "source": SOURCE,
        "type": f"dev.chorus.support.{kind}",
        "kind": kind,
        "subject": conversation,
        "time": time,
        "data": data,
    }


def sentiment_drop(
    conversation: str,
    customer: str,
    when: datetime,
    *,
    sentiment: float,
    trend: float,
    previous: float | None,
    reason: str,
    offset: int,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer_id": customer,
        "sentiment": sentiment,
        "trend": trend,
        "reason": reason,
    }
    if previous is not None:
        data["previous_trend"] = previous
    return envelope("sentiment_drop", conversation, when, data, suffix=f":0-{offset}")


def long_wait(
    conversation: str, customer: str, message: datetime, timeout: int = 300
) -> dict[str, Any]:
    deadline = message + timedelta(seconds=timeout)
    data: dict[str, Any] = {"customer_id": customer, "message_time": message.isoformat()}
    data["timeout_seconds"] = timeout
    return envelope("long_wait", conversation, deadline, data)


def repeat_contact(
    conversation: str, customer: str, when: datetime, previous: str, previous_opened: datetime
) -> dict[str, Any]:
    data = {
        "customer_id": customer,
        "previous_conversation_id": previous,
        "previous_opened": previous_opened.isoformat(),
        "gap_seconds": int((when - previous_opened).total_seconds()),
    }
    return envelope("repeat_contact", conversation, when, data)


def angry_customer(customer: str = "cust-002") -> list[dict[str, Any]]:
    """What the job writes for the generator's ``AngryCustomer`` at 09:30 (in event time order).

    Conversation ``conv-00007``: replies come 5 minutes and more after the customer's
    messages (long waits), the sentiment falls -0.1, -0.3, -0.5, -0.7, -0.9 (the trend of
    three crosses the floor of -0.5 at the fifth message); ten minutes after it ends the
    customer opens ``conv-00009`` at -0.9 (a repeat contact, below the floor at once).
    """
    first, second = "conv-00007", "conv-00009"
    return [
        long_wait(first, customer, at(2140)),
        long_wait(first, customer, at(2630)),
        sentiment_drop(
            first, customer, at(3900),
            sentiment=-0.9, trend=-0.7, previous=-0.5, reason="below_floor", offset=41,
        ),
        repeat_contact(second, customer, at(4500), first, at(1800)),
        sentiment_drop(
            second, customer, at(4500),
            sentiment=-0.9, trend=-0.9, previous=None, reason="below_floor", offset=44,
        ),
        long_wait(second, customer, at(4500)),
    ]  # fmt: skip


def mild(customer: str = "cust-005") -> list[dict[str, Any]]:
    """Triggers the job writes for ordinary customers: none of them worth an escalation.

    A happy customer cooling to neutral (a ``trend_drop`` that stays above -0.25), and the
    same customer back with a new question two hours later.
    """
    return [
        sentiment_drop(
            "conv-00003", customer, at(900),
            sentiment=-0.1, trend=0.05, previous=0.6, reason="trend_drop", offset=12,
        ),
        repeat_contact("conv-00011", customer, at(8100), "conv-00003", at(800)),
    ]  # fmt: skip
