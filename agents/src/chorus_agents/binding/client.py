"""The client side of the binding: an a2a-sdk ``ClientTransport`` that speaks Kafka.

A :class:`KafkaA2AConnection` is what one process needs to call agents over Kafka: a
producer for requests and a reader of its own replies topic, shared by every call.
Register it with a2a-sdk's ``ClientFactory`` and any AgentCard listing the Kafka
interface gets a Kafka client, used like any other A2A client::

    replies = replies_topic("ns", "me")  # chorus.ns.a2a.me.replies
    async with KafkaA2AConnection(config, replies=replies, sender="ns/me") as kafka:
        factory = ClientFactory(ClientConfig(supported_protocol_bindings=[BINDING_URI]))
        kafka.register(factory)
        client = factory.create(card)

A call produces one request to the target's inbox (``chorus-reply-to`` = our replies
topic) and waits for the records carrying its ``chorus-correlation-id``, until the one
marked ``chorus-stream-end``. Requests are at-least-once: a call that times out may
still have been served.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

from a2a.client import ClientCallContext, ClientFactory
from a2a.client.client import ClientConfig
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.client.transports.base import ClientTransport
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from a2a.utils.proto_utils import parse_lenient
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from chorus_agents.binding import codec
from chorus_agents.binding.codec import BINDING_URI, A2AResponse, InvalidResponse, OutRecord
from chorus_agents.kafka import helper_group
from chorus_agents.proto import ProtoMessage

log = logging.getLogger(__name__)

URL_SCHEME = "kafka"
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

M = TypeVar("M")


def interface_url(inbox: str) -> str:
    """The AgentInterface URL of an agent's Kafka interface: ``kafka:<inbox topic>``."""
    if _TOPIC.fullmatch(inbox) is None:
        raise ValueError(f"not a topic name: {inbox!r}")
    return f"{URL_SCHEME}:{inbox}"


def inbox_of(url: str) -> str:
    """The inbox topic a Kafka interface URL names."""
    scheme, _, topic = url.partition(":")
    topic = topic.removeprefix("//")
    if scheme != URL_SCHEME or _TOPIC.fullmatch(topic) is None:
        raise ValueError(f"not a Kafka interface URL (kafka:<topic>): {url!r}")
    return topic


class ReplyReader:
    """Reads a replies topic and hands each response to the call waiting for it.

    It reads every partition (no consumer group: each replica of an agent reads all its
    replies and keeps those of its own calls) from the end as it was at :meth:`start`,
    committed records only. Responses nobody waits for are dropped.
    """

    def __init__(self, kafka_config: Mapping[str, Any], topic: str) -> None:
        self.topic = topic
        self._config = dict(kafka_config)
        self._waiting: dict[str, asyncio.Queue[A2AResponse]] = {}
        self._consumer: Consumer | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self, timeout: float = 30.0) -> None:
        """Positions on the end of every partition, then reads in the background."""
        self._consumer = await asyncio.to_thread(self._open, timeout)
        self._pump = asyncio.create_task(self._read(), name=f"replies:{self.topic}")

    def _open(self, timeout: float) -> Consumer:
        consumer = Consumer(
            {
                **self._config,
                # Never joined nor committed (partitions are assigned); named under
                # the agent's helper-group prefix, which its KafkaUser may use.
                "group.id": helper_group(self.topic, "reader"),
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,
            }
        )
        metadata = consumer.list_topics(self.topic, timeout=timeout).topics[self.topic]
        if metadata.error is not None:
            consumer.close()
            raise A2AClientError(f"replies topic {self.topic}: {metadata.error}")
        deadline = time.monotonic() + timeout
        positions = [
            TopicPartition(self.topic, p, _high_watermark(consumer, self.topic, p, deadline))
            for p in sorted(metadata.partitions)
        ]
        consumer.assign(positions)
        return consumer

    async def _read(self) -> None:
        assert self._consumer is not None
        while not self._closing:
            messages = await asyncio.to_thread(self._consumer.consume, 500, 0.05)
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() not in (
                        KafkaError._PARTITION_EOF,
                        KafkaError.GROUP_AUTHORIZATION_FAILED,  # the group is never used
                    ):
                        log.warning("replies %s: %s", self.topic, error.str())
                    continue
                try:
                    response = codec.decode_response(message.value(), message.headers())
                except InvalidResponse as exc:
                    log.warning("replies %s: skipping a record: %s", self.topic, exc)
                    continue
                queue = self._waiting.get(response.correlation_id)
                if queue is not None:
                    queue.put_nowait(response)

    def expect(self, correlation_id: str) -> asyncio.Queue[A2AResponse]:
        """The queue the responses to ``correlation_id`` will arrive on."""
        queue: asyncio.Queue[A2AResponse] = asyncio.Queue()
        self._waiting[correlation_id] = queue
        return queue

    def forget(self, correlation_id: str) -> None:
        """Stops routing responses to ``correlation_id``."""
        self._waiting.pop(correlation_id, None)

    async def close(self) -> None:
        """Stops reading and closes the consumer."""
        self._closing = True
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await asyncio.to_thread(consumer.close)


_SETTLING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)
"""Errors of a topic that was just created, or of a leader moving: worth another try."""


def _high_watermark(consumer: Consumer, topic: str, partition: int, deadline: float) -> int:
    """The partition's end; retried while a new topic's leadership settles."""
    while True:
        try:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition),
                timeout=max(1.0, deadline - time.monotonic()),
                cached=False,
            )
            return int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            settling = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _SETTLING
            )
            if not settling or time.monotonic() > deadline:
                raise A2AClientError(f"replies topic {topic}[{partition}]: {exc}") from exc
            time.sleep(0.2)


class RequestSender:
    """Produces request records (idempotent producer, no transaction) and waits for delivery."""

    def __init__(self, kafka_config: Mapping[str, Any], *, timeout: float = 30.0) -> None:
        self._config = {**kafka_config, "enable.idempotence": True, "linger.ms": 0}
        self._producer: Producer | None = None
        self._timeout = timeout

    async def send(self, record: OutRecord) -> None:
        """Produces ``record``; raises ``A2AClientError`` when Kafka did not take it."""
        if self._producer is None:
            self._producer = Producer(self._config)
        producer = self._producer
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[None] = loop.create_future()

        def report(error: KafkaError | None, _message: Any) -> None:
            loop.call_soon_threadsafe(_settle, delivered, error)

        try:
            producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                headers=list(record.headers),
                on_delivery=report,
            )
        except KafkaException as exc:  # refused before it left: too large, unknown topic
            size = len(record.value or b"")
            raise A2AClientError(
                f"request to {record.topic} ({size:,} bytes) not sent: {exc.args[0].str()}"
            ) from None
        await asyncio.to_thread(producer.flush, self._timeout)
        try:
            await asyncio.wait_for(delivered, self._timeout)
        except TimeoutError:
            raise A2AClientTimeoutError(f"request to {record.topic}: not delivered") from None

    async def close(self) -> None:
        """Delivers what is still queued, then lets the producer go."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.to_thread(producer.flush, self._timeout)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(A2AClientError(f"Kafka did not take the request: {error.str()}"))


class KafkaA2AConnection:
    """One process's link to Kafka for outgoing A2A calls: a sender and a reply reader.

    ``replies`` is the caller's own replies topic and ``sender`` its
    ``<namespace>/<agent>``. ``timeout`` bounds the wait for each record of an answer
    when the call's context sets none (``None``: wait as long as it takes).
    """

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        *,
        replies: str,
        sender: str,
        timeout: float | None = 120.0,
    ) -> None:
        self.replies_topic = replies
        self.sender = sender
        self.timeout = timeout
        self.replies = ReplyReader(kafka_config, replies)
        self.requests = RequestSender(kafka_config)

    async def __aenter__(self) -> KafkaA2AConnection:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Starts reading replies; calls made before would miss their answers."""
        await self.replies.start()

    async def close(self) -> None:
        """Stops reading replies and delivers pending requests."""
        await self.replies.close()
        await self.requests.close()

    def transport(self, card: AgentCard, url: str) -> KafkaTransport:
        """A transport to the agent whose Kafka interface is ``url``."""
        return KafkaTransport(self, card, inbox_of(url))

    def register(self, factory: ClientFactory) -> None:
        """Makes ``factory`` build Kafka transports for this binding's interfaces."""

        def produce(card: AgentCard, url: str, _config: ClientConfig) -> ClientTransport:
            return self.transport(card, url)

        factory.register(BINDING_URI, produce)

    async def exchange(
        self,
        inbox: str,
        method: str,
        params: ProtoMessage,
        context: ClientCallContext | None,
    ) -> AsyncIterator[A2AResponse]:
        """Sends one request and yields the records of its answer, the last one included."""
        request_id = str(uuid.uuid4())
        queue = self.replies.expect(request_id)
        timeout = (
            context.timeout if context is not None and context.timeout is not None else self.timeout
        )
        try:
            record = codec.encode_request(
                method,
                params,
                topic=inbox,
                request_id=request_id,
                reply_to=self.replies_topic,
                sender=self.sender,
                service_parameters=context.service_parameters if context else None,
                trace=_trace_context(),  # hook: the caller's span travels with the request
            )
            await self.requests.send(record)
            expected = 0
            while True:
                try:
                    response = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    raise A2AClientTimeoutError(
                        f"{method} to {inbox}: no answer within {timeout:.0f}s"
                    ) from None
                if response.seq < expected:
                    continue  # a duplicate: the agent's transaction was retried
                expected = response.seq + 1
                yield response
                if response.end:
                    return
        finally:
            self.replies.forget(request_id)


def _trace_context() -> dict[str, str]:
    """The running span's W3C ``traceparent``/``tracestate``; empty outside a span."""
    from opentelemetry.propagate import inject  # hook: tracing (chorus_agents.tracing)

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


class KafkaTransport(ClientTransport):
    """a2a-sdk's ``ClientTransport`` over the Kafka binding, to one agent's inbox."""

    def __init__(self, connection: KafkaA2AConnection, card: AgentCard, inbox: str) -> None:
        self.connection = connection
        self.agent_card = card
        self.inbox = inbox

    async def _unary(
        self, method: str, params: ProtoMessage, context: ClientCallContext | None, into: M
    ) -> M:
        async for response in self.connection.exchange(self.inbox, method, params, context):
            response.raise_for_error()
            if response.end:
                if isinstance(response.result, dict):
                    return parse_lenient(response.result, into)
                return into
        raise A2AClientError(f"{method} to {self.inbox}: the answer ended without a result")

    async def _stream(
        self, method: str, params: ProtoMessage, context: ClientCallContext | None
    ) -> AsyncGenerator[StreamResponse]:
        async for response in self.connection.exchange(self.inbox, method, params, context):
            response.raise_for_error()
            if not isinstance(response.result, dict):
                raise A2AClientError(f"{method} to {self.inbox}: a stream record without a result")
            yield parse_lenient(response.result, StreamResponse())

    async def send_message(
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> SendMessageResponse:
        return await self._unary("SendMessage", request, context, SendMessageResponse())

    async def send_message_streaming(
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse]:
        async for event in self._stream("SendStreamingMessage", request, context):
            yield event

    async def get_task(
        self, request: GetTaskRequest, *, context: ClientCallContext | None = None
    ) -> Task:
        return await self._unary("GetTask", request, context, Task())

    async def list_tasks(
        self, request: ListTasksRequest, *, context: ClientCallContext | None = None
    ) -> ListTasksResponse:
        return await self._unary("ListTasks", request, context, ListTasksResponse())

    async def cancel_task(
        self, request: CancelTaskRequest, *, context: ClientCallContext | None = None
    ) -> Task:
        return await self._unary("CancelTask", request, context, Task())

    async def create_task_push_notification_config(
        self, request: TaskPushNotificationConfig, *, context: ClientCallContext | None = None
    ) -> TaskPushNotificationConfig:
        return await self._unary(
            "CreateTaskPushNotificationConfig", request, context, TaskPushNotificationConfig()
        )

    async def get_task_push_notification_config(
        self,
        request: GetTaskPushNotificationConfigRequest,
        *,
        context: ClientCallContext | None = None,
    ) -> TaskPushNotificationConfig:
        return await self._unary(
            "GetTaskPushNotificationConfig", request, context, TaskPushNotificationConfig()
        )

    async def list_task_push_notification_configs(
        self,
        request: ListTaskPushNotificationConfigsRequest,
        *,
        context: ClientCallContext | None = None,
    ) -> ListTaskPushNotificationConfigsResponse:
        return await self._unary(
            "ListTaskPushNotificationConfigs",
            request,
            context,
            ListTaskPushNotificationConfigsResponse(),
        )

    async def delete_task_push_notification_config(
        self,
        request: DeleteTaskPushNotificationConfigRequest,
        *,
        context: ClientCallContext | None = None,
    ) -> None:
        await self._unary("DeleteTaskPushNotificationConfig", request, context, None)

    async def subscribe(
        self, request: SubscribeToTaskRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse]:
        async for event in self._stream("SubscribeToTask", request, context):
            yield event

    async def get_extended_agent_card(
        self, request: GetExtendedAgentCardRequest, *, context: ClientCallContext | None = None
    ) -> AgentCard:
        if not self.agent_card.capabilities.extended_agent_card:
            return self.agent_card
        return await self._unary("GetExtendedAgentCard", request, context, AgentCard())

    async def close(self) -> None:
        """Nothing to close: the connection is shared and closed by its owner."""
