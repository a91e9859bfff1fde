"""Agents on the secured broker, each as its own user with exactly its KafkaUser's ACLs.

The ACLs are the operator's (:func:`chorus_operator.model.access.agent_acls`), rendered
as Strimzi's ``spec.authorization.acls`` and applied through the Admin API as Strimzi's
user operator applies them. With them, agents do their whole job; beyond them, the
broker refuses, and says which topic.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest, TaskState
from chorus_agents.binding import codec
from chorus_agents.binding.client import KafkaA2AConnection
from chorus_agents.binding.codec import OutRecord
from chorus_agents.binding.writer import OutputWriter, TransactionFailed
from chorus_agents.handler import Context, DomainEvent
from chorus_agents.host import AgentHost
from chorus_agents.kafka import read_to_end
from chorus_api.runtime import RuntimeConfig
from chorus_api.topics import (
    AGENT_CARDS_TOPIC,
    consumer_group,
    dead_letter_topic,
    inbox_topic,
    replies_topic,
    tasks_topic,
    transactional_id,
)
from chorus_operator.model.access import agent_acls
from confluent_kafka import Consumer, Producer

from tests.agents.conftest import (
    FAST,
    ScriptExecutor,
    agent_config,
    answer_text,
    create_agent_topics,
    create_missing_topics,
    user_text,
)
from tests.agents.test_handler import RiskHandler
from tests.services.acls import user_with_acls
from tests.services.kafka import KafkaBroker, admin, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def agent_user(
    secured: KafkaBroker,
    ns: str,
    agent: str,
    *,
    subscribe: Iterable[str] = (),
    publish: Iterable[str] = (),
) -> KafkaBroker:
    """The agent's KafkaUser: a SCRAM user with exactly the operator's ACLs."""
    acls = agent_acls(ns, agent, subscribe=subscribe, publish=publish)
    return user_with_acls(secured, f"{ns}-{agent}", [acl.strimzi() for acl in acls])


@pytest.fixture
async def hosts() -> AsyncIterator[list[AgentHost]]:
    started: list[AgentHost] = []
    yield started
    for host in reversed(started):
        await host.stop()


async def start(
    hosts: list[AgentHost], config: RuntimeConfig, user: KafkaBroker, logic: Any = None
) -> AgentHost:
    script = logic if logic is not None else ScriptExecutor()
    host = AgentHost(config, script, kafka_config=user.client_config(), settings=FAST)
    if isinstance(script, ScriptExecutor):
        script.host = host
    await host.start()
    hosts.append(host)
    return host


def namespace() -> str:
    return f"lp{uuid.uuid4().hex[:8]}"


async def test_two_agents_talk_over_kafka_as_their_own_users(
    kafka_secured: KafkaBroker, hosts: list[AgentHost]
) -> None:
    ns, names = namespace(), ("console", "desk", "risk")
    configs = {name: agent_config(ns, name, kafka_secured) for name in ("desk", "risk")}
    await asyncio.to_thread(
        create_missing_topics,
        kafka_secured,
        [AGENT_CARDS_TOPIC],
        config={"cleanup.policy": "compact"},
    )
    for config in configs.values():
        await asyncio.to_thread(create_agent_topics, kafka_secured, config)
    console_replies = replies_topic(ns, "console")
    await asyncio.to_thread(create_missing_topics, kafka_secured, [console_replies])
    users = {name: await asyncio.to_thread(agent_user, kafka_secured, ns, name) for name in names}

    await start(hosts, configs["risk"], users["risk"])
    desk = await start(hosts, configs["desk"], users["desk"])
    console = KafkaA2AConnection(
        users["console"].client_config(), replies=console_replies, sender=f"{ns}/console"
    )
    await console.start()
    try:
        assert desk.card is not None
        to_desk = console.transport(desk.card, desk.card.supported_interfaces[0].url)
        answer = await to_desk.send_message(
            SendMessageRequest(message=user_text("ask risk echo NVDA x7"))
        )
    finally:
        await console.close()

    assert answer.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(answer.task) == "risk says echo: NVDA x7"
    assert all(host.ready for host in hosts)

    # Reading another agent's inbox: refused by the broker, which names the topic.
    desk_inbox = inbox_topic(ns, "desk")
    with pytest.raises(RuntimeError, match=rf"{desk_inbox}.*(?i:authoriz)"):
        await asyncio.to_thread(read_to_end, users["risk"].client_config(), desk_inbox, timeout=20)


async def test_an_agent_logs_in_with_the_settings_of_its_runtime_config(
    kafka_secured: KafkaBroker, hosts: list[AgentHost], tmp_path: Path
) -> None:
    ns = namespace()
    user = await asyncio.to_thread(agent_user, kafka_secured, ns, "risk")
    assert user.password is not None and user.username is not None
    password_file = tmp_path / "password"
    password_file.write_text(user.password + "\n")
    kafka = {
        "bootstrapServers": kafka_secured.bootstrap_servers,
        "securityProtocol": "SASL_PLAINTEXT",
        "saslMechanism": "SCRAM-SHA-512",
        "username": user.username,
        "passwordFile": str(password_file),
    }
    config = agent_config(ns, "risk", kafka_secured, kafka=kafka)
    await asyncio.to_thread(
        create_missing_topics,
        kafka_secured,
        [AGENT_CARDS_TOPIC],
        config={"cleanup.policy": "compact"},
    )
    await asyncio.to_thread(create_agent_topics, kafka_secured, config)
    console_replies = replies_topic(ns, "console")
    await asyncio.to_thread(create_missing_topics, kafka_secured, [console_replies])

    # No kafka_config given: the host builds its clients from config.kafka.
    host = AgentHost(config, ScriptExecutor(), settings=FAST)
    await host.start()
    hosts.append(host)
    console = KafkaA2AConnection(
        kafka_secured.client_config(), replies=console_replies, sender=f"{ns}/console"
    )
    await console.start()
    try:
        assert host.card is not None
        to_risk = console.transport(host.card, host.card.supported_interfaces[0].url)
        answer = await to_risk.send_message(SendMessageRequest(message=user_text("echo hi")))
    finally:
        await console.close()
    assert answer_text(answer.task) == "echo: hi"
    assert host.ready


async def handler_agent(
    secured: KafkaBroker, ns: str, subscribe: str, publish: list[str]
) -> RuntimeConfig:
    """Agent ``risk`` running ``RiskHandler`` on ``subscribe``, its topics and the cards
    topic made."""
    await asyncio.to_thread(
        create_missing_topics, secured, [AGENT_CARDS_TOPIC], config={"cleanup.policy": "compact"}
    )
    config = agent_config(
        ns,
        "risk",
        secured,
        handler="tests.agents.test_handler:RiskHandler",
        topics={"subscribe": [subscribe], "publish": publish},
    )
    await asyncio.to_thread(create_agent_topics, secured, config)
    return config


async def test_a_handler_consumes_and_publishes_only_what_it_declared(
    kafka_secured: KafkaBroker, hosts: list[AgentHost]
) -> None:
    ns = namespace()
    signals, decisions, elsewhere = f"{ns}.signals", f"{ns}.decisions", f"{ns}.orders"
    await asyncio.to_thread(
        create_missing_topics, kafka_secured, [signals, decisions, elsewhere], partitions=2
    )
    config = await handler_agent(kafka_secured, ns, signals, [decisions])
    user = await asyncio.to_thread(
        agent_user, kafka_secured, ns, "risk", subscribe=[signals], publish=[decisions]
    )
    await start(hosts, config, user, RiskHandler(decisions))

    producer = Producer(kafka_secured.client_config())
    for symbol, qty in (("AAPL", 1), ("MSFT", 2)):
        producer.produce(signals, key=symbol, value=json.dumps({"symbol": symbol, "qty": qty}))
    assert producer.flush(10) == 0

    async def decided() -> list[Any]:
        while True:
            records = await asyncio.to_thread(read_topic, kafka_secured, decisions)
            if len(records) >= 2:
                return records
            await asyncio.sleep(0.2)

    records = await asyncio.wait_for(decided(), 30)
    assert sorted(json.loads(r.value())["symbol"] for r in records) == ["AAPL", "MSFT"]

    # Writing a topic it does not publish, with its own transactional id: the broker
    # refuses the transaction, and the error names the topic.
    writer = OutputWriter(
        user.client_config(),
        agent=f"{ns}/risk",
        transactional_id=transactional_id(ns, "risk", "intruder"),
        max_record_bytes=1024,
        commit_timeout=20,
    )
    consumer = Consumer(user.client_config(**{"group.id": consumer_group(ns, "risk")}))
    await writer.open()
    try:
        with pytest.raises(TransactionFailed, match=rf"{elsewhere}.*(?i:authoriz)") as refused:
            await writer.write([OutRecord(elsewhere, b"k", b"{}", ())], {}, consumer)
        assert refused.value.authorization
    finally:
        await writer.close()
        consumer.close()
    assert await asyncio.to_thread(read_topic, kafka_secured, elsewhere) == []


def produce_one(user: KafkaBroker, topic: str) -> str | None:
    """Writes one record as ``user``; the broker's error code name, or ``None`` if stored."""
    errors: list[str | None] = []
    producer = Producer(user.client_config())
    producer.produce(
        topic, b"{}", on_delivery=lambda err, _: errors.append(err.name() if err else None)
    )
    producer.flush(20)
    assert len(errors) == 1, f"no delivery report for {topic}"
    return errors[0]


async def test_an_agent_writes_its_peers_a2a_topics_and_none_of_their_own(
    kafka_secured: KafkaBroker,
) -> None:
    """The one prefixed ACL covers every peer's inbox and replies topic, not their tasks
    and dead letters, nor another namespace's inboxes: checked by the broker."""
    ns, other = namespace(), namespace()
    a2a = [inbox_topic(ns, "desk"), replies_topic(ns, "desk")]
    private = [tasks_topic(ns, "desk"), dead_letter_topic(ns, "desk")]
    foreign = [inbox_topic(other, "desk")]
    await asyncio.to_thread(create_missing_topics, kafka_secured, a2a + private + foreign)
    risk = await asyncio.to_thread(agent_user, kafka_secured, ns, "risk")

    for topic in a2a:
        assert await asyncio.to_thread(produce_one, risk, topic) is None, topic
    for topic in private + foreign:
        error = await asyncio.to_thread(produce_one, risk, topic)
        assert error == "TOPIC_AUTHORIZATION_FAILED", (topic, error)


class OrderingHandler(RiskHandler):
    """Publishes a decision; for ``"to": <topic>`` also an order, to that topic."""

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        await super().on_event(event, ctx)
        if event.value.get("to"):
            ctx.publish(event.value["to"], {"symbol": event.value["symbol"]}, key=event.key)


async def test_a_publish_kafka_refuses_fails_its_event_alone_and_the_agent_goes_on(
    kafka_secured: KafkaBroker, hosts: list[AgentHost]
) -> None:
    """The agent declares ``orders`` and ``fills``. Its KafkaUser may only describe
    ``orders`` (an ACL left out): the event that publishes there fails before its
    transaction (the broker says what the agent may do with the topic). It may write
    ``fills``, until that right is revoked while the agent runs: the broker then refuses
    the transaction, and the event that published there fails when it runs again. Each
    is dead-lettered (``output-refused``, naming the topic); the events around it, in the
    same transactions, are decided; the agent stays up and ready."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # documented, not re-exported
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
    )
    from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

    ns = namespace()
    signals, decisions = f"{ns}.signals", f"{ns}.decisions"
    orders, fills = f"{ns}.orders", f"{ns}.fills"
    topics = [signals, decisions, orders, fills]
    await asyncio.to_thread(create_missing_topics, kafka_secured, topics)
    config = await handler_agent(kafka_secured, ns, signals, [decisions, orders, fills])
    rules = agent_acls(ns, "risk", subscribe=[signals], publish=[decisions, fills])
    describe_only = {"resource": {"type": "topic", "name": orders}, "operations": ["Describe"]}
    user = await asyncio.to_thread(
        user_with_acls, kafka_secured, f"{ns}-risk", [*(a.strimzi() for a in rules), describe_only]
    )
    host = await start(hosts, config, user, OrderingHandler(decisions))
    producer = Producer(kafka_secured.client_config())

    async def run(events: list[tuple[str, str | None]], decided: int) -> list[str]:
        for symbol, to in events:
            value = {"symbol": symbol, "qty": 1, "to": to}
            producer.produce(signals, key="all", value=json.dumps(value))
        assert producer.flush(10) == 0
        while True:
            records = await asyncio.to_thread(read_topic, kafka_secured, decisions)
            if len(records) >= decided:
                return [json.loads(r.value() or b"")["symbol"] for r in records]
            await asyncio.sleep(0.2)

    first = [("AAPL", fills), ("MSFT", None), ("BAD", orders), ("NVDA", None)]
    assert await asyncio.wait_for(run(first, 3), 60) == ["AAPL", "MSFT", "NVDA"]

    write_fills = AclBindingFilter(
        ResourceType.TOPIC,
        fills,
        ResourcePatternType.LITERAL,
        f"User:{ns}-risk",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    client = admin(kafka_secured)
    for future in client.delete_acls([write_fills]).values():
        assert len(future.result(timeout=30)) == 1
    await asyncio.sleep(1)  # the broker's authorizer applies it
    second = [("AMZN", None), ("LATE", fills), ("TSLA", None)]
    assert await asyncio.wait_for(run(second, 5), 60) == ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA"]

    letters = await asyncio.to_thread(read_topic, kafka_secured, config.topics.dead_letter)
    refused = {
        json.loads(letter.value() or b"")["symbol"]: codec.header_map(letter.headers())
        for letter in letters
    }
    assert sorted(refused) == ["BAD", "LATE"]
    for symbol, topic in (("BAD", orders), ("LATE", fills)):
        assert refused[symbol][codec.ERROR_REASON] == "output-refused"
        assert topic in refused[symbol][codec.ERROR_MESSAGE]
    assert await asyncio.to_thread(read_topic, kafka_secured, orders) == []
    assert [json.loads(r.value() or b"")["symbol"] for r in read_topic(kafka_secured, fills)] == [
        "AAPL"
    ]
    assert host.ready, host.health.ready()
    # LATE went the second way: its transaction refused, then the loop went back to the
    # committed offsets, once
    assert host.server is not None and host.server.pipeline.resets == 1
