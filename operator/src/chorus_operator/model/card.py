"""The agent's A2A AgentCard as a plain dict (ProtoJSON, camelCase), for the ConfigMap and
status.

The same card as ``chorus_agents.card.build_agent_card`` builds with a2a-sdk types; the
operator cannot import ``chorus_agents`` (another distribution), so this is a pure copy of
its shape. A test of the agent runtime should compare the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chorus_api.agent import Skill

BINDING_URI = "https://chorus.dev/a2a/bindings/kafka/v1"
JSONRPC = "JSONRPC"
PROTOCOL_VERSION = "1.0"
TEXT_MODES = ("text/plain", "application/json")


def agent_card(
    *,
    namespace: str,
    name: str,
    inbox: str,
    http_url: str | None,
    description: str | None = None,
    version: str = "0.1.0",
    skills: Iterable[Skill] = (),
    streaming: bool = True,
) -> dict[str, Any]:
    """The card of agent ``namespace/name``: the Kafka interface first, then HTTP JSON-RPC."""
    interfaces = [
        {
            "url": f"kafka:{inbox}",
            "protocolBinding": BINDING_URI,
            "protocolVersion": PROTOCOL_VERSION,
        }
    ]
    if http_url is not None:
        interfaces.append(
            {"url": http_url, "protocolBinding": JSONRPC, "protocolVersion": PROTOCOL_VERSION}
        )
    return {
        "name": name,
        "description": description or f"Chorus agent {namespace}/{name}",
        "version": version,
        "supportedInterfaces": interfaces,
        "capabilities": {"streaming": streaming, "pushNotifications": False},
        "defaultInputModes": list(TEXT_MODES),
        "defaultOutputModes": list(TEXT_MODES),
        "skills": [
            {
                "id": skill.id,
                "name": skill.name,
                "description": skill.description or skill.name,
                "tags": list(skill.tags) or [skill.id],
            }
            for skill in skills
        ],
    }
