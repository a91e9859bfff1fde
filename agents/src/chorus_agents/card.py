"""The agent's A2A AgentCard, and the registry of every agent's card on Kafka.

The card lists two interfaces: the Kafka binding (``kafka:<inbox topic>``, preferred)
and the standard JSON-RPC over HTTP (the agent's gateway). It is published to the
compacted ``chorus.agent-cards`` topic under ``<namespace>/<agent>``, so any agent can
find any other by name (:class:`AgentDirectory`) without knowing where it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from a2a.utils.constants import TransportProtocol
from chorus_api.agent import Skill
from chorus_api.topics import agent_card_key

from chorus_agents.binding.client import interface_url
from chorus_agents.binding.codec import BINDING_URI, PROTOCOL_VERSION, OutRecord
from chorus_agents.kafka import read_to_end
from chorus_agents.proto import ParseError, from_json

log = logging.getLogger(__name__)

TEXT_MODES = ("text/plain", "application/json")


def build_agent_card(
    *,
    namespace: str,
    name: str,
    inbox: str,
    http_url: str | None,
    description: str | None = None,
    version: str = "0.1.0",
    skills: Iterable[Skill] = (),
    streaming: bool = True,
) -> AgentCard:
    """The card of agent ``namespace/name``: Kafka first, then HTTP when it serves one."""
    interfaces = [
        AgentInterface(
            url=interface_url(inbox),
            protocol_binding=BINDING_URI,
            protocol_version=PROTOCOL_VERSION,
        )
    ]
    if http_url is not None:
        interfaces.append(
            AgentInterface(
                url=http_url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION,
            )
        )
    return AgentCard(
        name=name,
        description=description or f"Chorus agent {namespace}/{name}",
        version=version,
        supported_interfaces=interfaces,
        capabilities=AgentCapabilities(streaming=streaming, push_notifications=False),
        default_input_modes=list(TEXT_MODES),
        default_output_modes=list(TEXT_MODES),
        skills=[
            AgentSkill(
                id=skill.id,
                name=skill.name,
                description=skill.description or skill.name,
                tags=list(skill.tags) or [skill.id],
            )
            for skill in skills
        ],
    )


def card_record(card: AgentCard, *, topic: str, namespace: str, agent: str) -> OutRecord:
    """The registry record of ``card``: key ``<namespace>/<agent>``, value the card's JSON."""
    import json

    value = json.dumps(agent_card_to_dict(card), ensure_ascii=False, separators=(",", ":"))
    return OutRecord(
        topic=topic,
        key=agent_card_key(namespace, agent).encode("utf-8"),
        value=value.encode("utf-8"),
    )


class AgentNotFound(LookupError):
    """No agent of that name has published its card."""


class AgentDirectory:
    """Every agent's card, read from the registry topic; lookups by name.

    :meth:`refresh` re-reads the (compacted, small) topic; :meth:`find` refreshes once
    when a name is unknown, so an agent started after this one is still found.

    ``group`` names the consumer group of the reads (never joined nor committed); give
    one the reader's KafkaUser may use (the host: ``chorus.<ns>.<agent>.cards-reader``).
    """

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        topic: str,
        *,
        namespace: str,
        group: str | None = None,
    ) -> None:
        self.topic = topic
        self.namespace = namespace
        self.group = group
        self._config = dict(kafka_config)
        self._cards: dict[str, AgentCard] = {}

    async def refresh(self) -> int:
        """Reads the registry to its end; returns how many agents it lists."""
        records = await asyncio.to_thread(read_to_end, self._config, self.topic, group=self.group)
        cards: dict[str, AgentCard] = {}
        for key, value, _ in records:
            if key is None:
                continue
            name = key.decode("utf-8", errors="replace")
            if value is None:
                cards.pop(name, None)
                continue
            try:
                cards[name] = from_json(value, AgentCard())
            except ParseError as exc:
                log.warning("agent cards: skipping %s: %s", name, exc)
        self._cards = cards
        return len(cards)

    def _key(self, name: str) -> str:
        return name if "/" in name else f"{self.namespace}/{name}"

    async def find(self, name: str) -> AgentCard:
        """The card of ``name`` (``agent`` in this namespace, or ``namespace/agent``)."""
        key = self._key(name)
        if key not in self._cards:
            await self.refresh()
        try:
            return self._cards[key]
        except KeyError:
            raise AgentNotFound(f"no agent {key} in {self.topic}") from None

    def known(self) -> list[str]:
        """The names of the agents read so far."""
        return sorted(self._cards)
