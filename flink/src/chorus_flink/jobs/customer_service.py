"""Customer service: sentiment trend per conversation, and the triggers to escalate it.

Input (``messages_topic``), one JSON object per chat message::

    {"conversation_id": "c-17", "customer_id": "cust-4", "role": "customer",
     "text": "Still broken.", "sentiment": -0.6, "event_time": "2026-01-01T09:00:05Z"}

``role`` is ``customer`` or ``agent``; ``sentiment`` (-1..1) is optional: without it the
job scores ``text`` with a small deterministic lexicon (:mod:`chorus_flink.scoring.sentiment`,
a Python UDF). Anything else, and late messages, go to ``dead_letter_topic`` (see
:mod:`chorus_flink.deadletter`).

Signals (``signals_topic``), keyed by ``conversation_id``:

``sentiment_drop``
    The *trend* is the moving average of the sentiment of the conversation's last
    ``trend_messages`` customer messages (an event-time OVER window). A customer message
    escalates when the trend fell by ``drop_threshold`` or more since the previous
    customer message (``reason`` ``trend_drop``), or crossed below ``sentiment_floor``
    (``below_floor``; also on the conversation's first customer message): ``customer_id``,
    ``sentiment``, ``trend``, ``previous_trend``, ``reason``; ``time`` = the message's.
``long_wait``
    A customer message that starts a wait (the conversation's first message, or the first
    customer message after an agent's) with no agent message in the same conversation
    within ``reply_timeout_seconds`` after it (an event-time interval left join: it fires
    when the watermark passes the deadline): ``customer_id``, ``message_time``,
    ``timeout_seconds``; ``time`` = the deadline.
``repeat_contact``
    A conversation opened (its first message) by a customer less than
    ``repeat_contact_seconds`` after the customer's previous conversation opened:
    ``customer_id``, ``previous_conversation_id``, ``previous_opened``, ``gap_seconds``;
    ``time`` = the new conversation's first message.

Which message is a conversation's first is kept in keyed state per conversation; on a
long-running deployment bound it with ``table.exec.state.ttl`` longer than
``repeat_contact_seconds`` and the longest conversation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chorus_flink.config import ConfigError, JobConfig
from chorus_flink.deadletter import Field
from chorus_flink.kafka import ident
from chorus_flink.scoring.sentiment import sentiment
from chorus_flink.signal_job import Parameters, SignalJob, Udf, at_least
from chorus_flink.tables import RECORD_ID, interval

if TYPE_CHECKING:
    from pyflink.table import StatementSet, StreamTableEnvironment

FIELDS = (
    Field("conversation_id", "STRING", check="CHAR_LENGTH(TRIM({})) > 0"),
    Field("customer_id", "STRING", check="CHAR_LENGTH(TRIM({})) > 0"),
    Field("role", "STRING", check="{} IN ('customer', 'agent')"),
    Field("text", "STRING"),
    Field("sentiment", "DOUBLE", required=False, check="{0} >= -1 AND {0} <= 1"),
)

DATA_COLUMNS = (
    "`customer_id` STRING",
    "`sentiment` DOUBLE",
    "`trend` DOUBLE",
    "`previous_trend` DOUBLE",
    "`reason` STRING",
    "`message_time` TIMESTAMP(3)",
    "`timeout_seconds` BIGINT",
    "`previous_conversation_id` STRING",
    "`previous_opened` TIMESTAMP(3)",
    "`gap_seconds` BIGINT",
)


def lexicon_sentiment(text: str | None) -> float:
    """UDF: :func:`chorus_flink.scoring.sentiment.sentiment`."""
    return sentiment(text)


JOB = SignalJob(
    module="chorus_flink.jobs.customer_service",
    domain="support",
    input="messages",
    fields=FIELDS,
    data_columns=DATA_COLUMNS,
    own_parameters={
        "trend_messages": "3",
        "drop_threshold": "0.5",
        "sentiment_floor": "-0.5",
        "reply_timeout_seconds": "300",
        "repeat_contact_seconds": "86400",
    },
    udfs=(Udf("lexicon_sentiment", lexicon_sentiment, ("STRING",), "DOUBLE"),),
)
MODULE = JOB.module

PARAMETERS: Mapping[str, str | None] = JOB.parameters
"""Every parameter and its default, as in the operator's catalogue."""


@dataclass(frozen=True)
class SupportParameters(Parameters):
    """The customer-service job's trend and escalation thresholds."""

    trend_messages: int = at_least(1)
    drop_threshold: float = at_least(0.0)
    sentiment_floor: float = at_least(-1.0)
    reply_timeout_seconds: int = at_least(1)
    repeat_contact_seconds: int = at_least(1)

    def check(self, job: JobConfig) -> None:
        for name in ("reply_timeout_seconds", "repeat_contact_seconds"):
            if getattr(self, name) >= 100 * 86400:
                raise ConfigError(f"job {job.job}: config {name!r} must be below 100 days")


def scored_view(name: str, messages: str) -> str:
    """DDL: the messages with ``score``: their sentiment, or the lexicon's."""
    return f"""
CREATE TEMPORARY VIEW {ident(name)} AS
SELECT `conversation_id`, `customer_id`, `role`, `event_time`, `source_partition`,
  `source_offset`,
  CASE WHEN `sentiment` IS NULL THEN lexicon_sentiment(`text`) ELSE `sentiment` END AS `score`
FROM {ident(messages)}
""".strip()


def _previous_row() -> str:
    return "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"


def sentiment_drop_signals(scored: str, p: SupportParameters) -> str:
    """SQL query: ``sentiment_drop`` when the customer's trend falls fast or below the floor."""
    floor, drop = repr(p.sentiment_floor), repr(p.drop_threshold)
    crossed = f"`trend` < {floor} AND (`n` = 1 OR `previous_trend` >= {floor})"
    fell = f"`n` = 2 AND `previous_trend` - `trend` >= {drop}"
    select = JOB.signal(
        "sentiment_drop",
        subject="`conversation_id`",
        time="`event_time`",
        id_suffix=RECORD_ID,
        data={
            "customer_id": "`customer_id`",
            "sentiment": "`score`",
            "trend": "`trend`",
            "previous_trend": "`previous_trend`",
            "reason": f"CONCAT_WS(',', CASE WHEN {fell} THEN 'trend_drop' END, "
            f"CASE WHEN {crossed} THEN 'below_floor' END)",
        },
    )
    return f"""
SELECT
  {select}
FROM (
  SELECT *, CASE WHEN `n` = 2 THEN `trend_sum` - `trend` END AS `previous_trend`
  FROM (
    SELECT *, SUM(`trend`) OVER w AS `trend_sum`, COUNT(*) OVER w AS `n`
    FROM (
      SELECT `conversation_id`, `customer_id`, `event_time`, `source_partition`,
        `source_offset`, `score`,
        AVG(`score`) OVER (
          PARTITION BY `conversation_id` ORDER BY `event_time`
          ROWS BETWEEN {p.trend_messages - 1} PRECEDING AND CURRENT ROW
        ) AS `trend`
      FROM {ident(scored)}
      WHERE `role` = 'customer'
    )
    WINDOW w AS (PARTITION BY `conversation_id` ORDER BY `event_time` {_previous_row()})
  )
)
WHERE ({fell}) OR ({crossed})
""".strip()


def long_wait_signals(scored: str, p: SupportParameters) -> str:
    """SQL query: ``long_wait`` for a wait that no agent message ends in time."""
    deadline = f"w.`event_time` + {interval(p.reply_timeout_seconds)}"
    select = JOB.signal(
        "long_wait",
        subject="w.`conversation_id`",
        time=deadline,
        data={
            "customer_id": "w.`customer_id`",
            "message_time": "w.`event_time`",
            "timeout_seconds": str(p.reply_timeout_seconds),
        },
    )
    # A wait starts at a customer message whose previous message (if any) is an agent's:
    # over the previous and this row, COUNT = 1 or one agent message among the two.
    return f"""
SELECT
  {select}
FROM (
  SELECT * FROM (
    SELECT `conversation_id`, `customer_id`, `role`, `event_time`,
      COUNT(*) OVER w AS `n`,
      SUM(CASE WHEN `role` = 'agent' THEN 1 ELSE 0 END) OVER w AS `agents`
    FROM {ident(scored)}
    WINDOW w AS (PARTITION BY `conversation_id` ORDER BY `event_time` {_previous_row()})
  )
  WHERE `role` = 'customer' AND (`n` = 1 OR `agents` = 1)
) AS w
LEFT JOIN (
  SELECT `conversation_id`, `event_time` FROM {ident(scored)} WHERE `role` = 'agent'
) AS r
  ON r.`conversation_id` = w.`conversation_id`
  AND r.`event_time` BETWEEN w.`event_time` AND {deadline}
WHERE r.`conversation_id` IS NULL
""".strip()


def repeat_contact_signals(scored: str, p: SupportParameters) -> str:
    """SQL query: ``repeat_contact`` when a customer opens conversations in quick succession."""
    select = JOB.signal(
        "repeat_contact",
        subject="`conversation_id`",
        time="`event_time`",
        data={
            "customer_id": "`customer_id`",
            "previous_conversation_id": "CASE WHEN `most` = `conversation_id` THEN `least` "
            "ELSE `most` END",
            "previous_opened": "`previous_opened`",
            "gap_seconds": "TIMESTAMPDIFF(SECOND, `previous_opened`, `event_time`)",
        },
    )
    # Openings: each conversation's first message. Per customer, over the previous and
    # this opening: MIN/MAX of the ids give the previous id, MIN of the times its time.
    return f"""
SELECT
  {select}
FROM (
  SELECT `conversation_id`, `customer_id`, `event_time`,
    MIN(`conversation_id`) OVER w AS `least`,
    MAX(`conversation_id`) OVER w AS `most`,
    MIN(`event_time`) OVER w AS `previous_opened`,
    COUNT(*) OVER w AS `n`
  FROM (
    SELECT * FROM (
      SELECT `conversation_id`, `customer_id`, `event_time`,
        COUNT(*) OVER (
          PARTITION BY `conversation_id` ORDER BY `event_time`
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS `nth`
      FROM {ident(scored)}
    )
    WHERE `nth` = 1
  )
  WINDOW w AS (PARTITION BY `customer_id` ORDER BY `event_time` {_previous_row()})
)
WHERE `n` = 2 AND `event_time` < `previous_opened` + {interval(p.repeat_contact_seconds)}
""".strip()


def build(t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet:
    """Wires the messages source, the UDF, the signal and dead-letter sinks around the SQL."""
    job = JOB.configure(config)
    p = SupportParameters.from_job(job)
    JOB.create_tables(t_env, job)
    t_env.execute_sql(scored_view("scored_messages", JOB.input))
    return JOB.statements(
        t_env,
        job,
        [
            sentiment_drop_signals("scored_messages", p),
            long_wait_signals("scored_messages", p),
            repeat_contact_signals("scored_messages", p),
        ],
    )
