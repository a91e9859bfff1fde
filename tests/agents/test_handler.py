"""Code-defined agents: a Handler under a2a-sdk's own request handler and in-memory task store.

No broker here; tests/agents/test_handler_on_kafka.py runs the same handler on the real one.
"""

from __future__ import annotations

import json

import pytest
from a2a.helpers import get_artifact_text
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import SendMessageRequest, Task, TaskState
from chorus_agents.binding.outbox import Outbox
from chorus_agents.card import build_agent_card
from chorus_agents.handler import (
    Context,
    DomainEvent,
    Handler,
    HandlerError,
    HandlerExecutor,
    Incoming,
    Reply,
    domain_event,
    load_handler,
)
from chorus_agents.tasks import InMemoryTaskStore

from tests.agents.conftest import (
    user_text,
)

DECISIONS = "trading.decisions"

pytestmark = pytest.mark.unit


class RiskHandler(Handler):
    """Scores a symbol: from a message's text, or from a signal event; publishes the decision."""

    def __init__(self, decisions: str = DECISIONS) -> None:
        self.decisions = decisions
        self.attempts: dict[str, int] = {}

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        if message.text == "boom":
            raise ValueError("cannot assess boom")
        score = len(message.text)
        ctx.publish(
            self.decisions, {"symbol": message.text, "score": score}, key=message.context_id
        )
        return Reply(text=f"risk of {message.text}: {score}", data={"score": score})

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        symbol = event.value["symbol"]
        self.attempts[symbol] = self.attempts.get(symbol, 0) + 1
        if event.value.get("bad"):
            raise ValueError(f"no price for {symbol}")
        ctx.publish(
            self.decisions, {"symbol": symbol, "score": event.value["qty"] * 2}, key=event.key
        )


def handler_and_outbox(
    publish: tuple[str, ...] = (DECISIONS,),
) -> tuple[DefaultRequestHandler, Outbox]:
    outbox = Outbox()
    context = Context(agent="trading/risk", outbox=outbox, publish_topics=publish)
    card = build_agent_card(
        namespace="trading", name="risk", inbox="chorus.trading.risk.inbox", http_url=None
    )
    return DefaultRequestHandler(
        HandlerExecutor(RiskHandler(), context), InMemoryTaskStore(), card
    ), outbox


@pytest.mark.anyio
async def test_a_message_becomes_a_completed_task_with_the_reply_and_a_published_decision() -> None:
    handler, outbox = handler_and_outbox()
    task = await handler.on_message_send(
        SendMessageRequest(message=user_text("AAPL", context_id="c1")), ServerCallContext()
    )
    assert isinstance(task, Task)
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert get_artifact_text(task.artifacts[0]) == "risk of AAPL: 4"
    assert task.artifacts[0].parts[1].data.struct_value.fields["score"].number_value == 4
    (record,) = outbox.drain()
    assert (record.topic, record.key) == (DECISIONS, b"c1")
    assert json.loads(record.value or b"") == {"symbol": "AAPL", "score": 4}
    assert record.header("chorus-sender") == "trading/risk"


@pytest.mark.anyio
async def test_a_handler_that_raises_fails_its_task_with_the_reason() -> None:
    handler, outbox = handler_and_outbox()
    task = await handler.on_message_send(
        SendMessageRequest(message=user_text("boom")), ServerCallContext()
    )
    assert isinstance(task, Task)
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert task.status.message.parts[0].text == "cannot assess boom"
    assert len(outbox) == 0


@pytest.mark.anyio
async def test_publishing_outside_the_declared_topics_fails_the_task() -> None:
    handler, outbox = handler_and_outbox(publish=("trading.other",))
    task = await handler.on_message_send(
        SendMessageRequest(message=user_text("AAPL")), ServerCallContext()
    )
    assert isinstance(task, Task)
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert "may not publish to trading.decisions" in task.status.message.parts[0].text
    assert len(outbox) == 0


def test_domain_events_parse_json_and_keep_other_values() -> None:
    event = domain_event("t", b"k", b'{"a": 1}', [("h", b"v")], partition=2, offset=9)
    assert (event.topic, event.key, event.value, dict(event.headers)) == (
        "t",
        "k",
        {"a": 1},
        {"h": "v"},
    )
    assert (event.partition, event.offset) == (2, 9)
    assert domain_event("t", None, b"\xff not json", None).value == b"\xff not json"


class NotAHandler:
    pass


def test_load_handler_names_what_is_wrong() -> None:
    assert isinstance(load_handler("tests.agents.test_handler:RiskHandler"), RiskHandler)
    for path, message in [
        ("tests.agents.nope:X", "cannot import tests.agents.nope"),
        ("tests.agents.test_handler:Missing", "has no Missing"),
        ("tests.agents.test_handler:NotAHandler", "NotAHandler is neither"),
    ]:
        with pytest.raises(HandlerError, match=message):
            load_handler(path)
