"""Calling another agent by name, in one line: ``await agents.ask("risk-assessor", "...")``.

The name is looked up in the AgentCard registry; the call goes through a2a-sdk's
``ClientFactory`` with the Kafka binding registered and preferred, so it travels over
Kafka when the card offers it and over HTTP otherwise.

Inside a handling (a message or an event), a call's ``messageId`` is derived from the
input and the call's ordinal: a handler run again for the same input (after a crash)
asks with the same ids, and the peer answers those from the task they made the first
time (:mod:`.binding.dispatch`) instead of acting again.
"""

from __future__ import annotations

import uuid

from a2a.client import Client, ClientCallContext, ClientConfig, ClientFactory
from a2a.helpers import new_text_message
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest, StreamResponse, Task
from a2a.utils.constants import TransportProtocol

from chorus_agents.audit import CAUSATION_HEADER, AuditSink
from chorus_agents.binding.client import KafkaA2AConnection
from chorus_agents.binding.codec import BINDING_URI
from chorus_agents.card import AgentDirectory
from chorus_agents.handler import next_ask_key


class AgentCaller:
    """A2A clients for agents found by name; see the module docstring."""

    def __init__(
        self,
        connection: KafkaA2AConnection,
        directory: AgentDirectory,
        *,
        audit: AuditSink | None = None,
    ) -> None:
        self.connection = connection
        self.directory = directory
        self.audit = audit
        """When set, each :meth:`ask` writes an ``agent.call`` record, and the request
        names it in ``chorus-causation-id``: the callee's records are caused by it."""
        self._factory = ClientFactory(
            ClientConfig(
                streaming=True,
                supported_protocol_bindings=[BINDING_URI, TransportProtocol.JSONRPC.value],
                use_client_preference=True,
            )
        )
        connection.register(self._factory)

    async def client(self, name: str) -> Client:
        """An a2a-sdk client of the agent ``name`` (``agent`` or ``namespace/agent``)."""
        return self._factory.create(await self.directory.find(name))

    async def ask(self, name: str, text: str, *, context_id: str | None = None) -> Task | Message:
        """Sends ``text`` to ``name`` and returns its answer: the final task, or its message."""
        client = await self.client(name)
        message = new_text_message(text, context_id=context_id, role=Role.ROLE_USER)
        key = next_ask_key()
        if key is not None:
            # Derived from the input being handled and the call's ordinal: asked again after
            # a restart, the peer recognises the message and answers without acting again.
            sender = self.connection.sender
            message.message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"chorus:{sender}:{key}"))
        call: ClientCallContext | None = None
        if self.audit is not None:
            cause = self.audit.record("agent.call", target=name, text=text[:4096])
            call = ClientCallContext(service_parameters={CAUSATION_HEADER: cause})
        answer: Task | Message | None = None
        try:
            async for event in client.send_message(
                SendMessageRequest(message=message), context=call
            ):
                answer = fold(answer, event)
        finally:
            await client.close()
        if answer is None:
            raise LookupError(f"agent {name} answered nothing")
        return answer


def fold(answer: Task | Message | None, event: StreamResponse) -> Task | Message | None:
    """The answer so far with one more streamed ``event`` applied (the task updated in place)."""
    if event.HasField("message"):
        return event.message
    if event.HasField("task"):
        return event.task
    if event.HasField("status_update") and isinstance(answer, Task):
        answer.status.CopyFrom(event.status_update.status)
    elif event.HasField("artifact_update") and isinstance(answer, Task):
        _apply_artifact(answer, event)
    return answer


def _apply_artifact(task: Task, event: StreamResponse) -> None:
    update = event.artifact_update
    for artifact in task.artifacts:
        if artifact.artifact_id == update.artifact.artifact_id:
            if update.append:
                artifact.parts.extend(update.artifact.parts)
            else:
                artifact.CopyFrom(update.artifact)
            return
    task.artifacts.append(update.artifact)
