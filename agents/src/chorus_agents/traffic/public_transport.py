"""``public-transport``: reroutes or holds buses around a confirmed incident.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model,
no tools) behind a small code-defined gate:

- only a *confirmed* incident on ``traffic.incidents`` (``traffic-monitoring``'s record
  with ``action: respond``) reaches the model; dismissed incidents are dropped without a
  model call;
- the gate adds the facts the model cannot look up, because there is no transit tool: the
  bus lines (:data:`BUS_LINES`) through the incident's site and those only through the
  other, queued segment, as ``Lines through the site: ...`` / ``Lines through the queue:
  ...`` lines after the record;
- the model decides: with the offline ``scripted`` provider, the packaged :data:`SCRIPT`
  (``public_transport.script.yaml``): reroute the lines through the site, else hold the
  lines through the queue, else nothing. Its reply starts with the action;
- the gate publishes the model's advisory on ``traffic.transit-advisories`` (key: the
  site)::

      {"incident", "site", "segments", "action": "reroute"|"hold"|"none",
       "lines": {"site": [...], "queue": [...]}, "advisory"}

  and audits a ``decision`` naming the incident (beside the loop's ``model.call`` and
  ``decision``).

Why a gate in code: an Agent's ``model`` has no field for a script file (the operator
gives the runtime none), and an instructed agent audits its answer but publishes
nothing. The Agent keeps ``instructions`` and ``model`` in its spec; the gate uses the
same :data:`INSTRUCTIONS` (a test compares them) and the packaged script.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_agents.instructed import InstructedAgent
from chorus_agents.models import ModelProvider
from chorus_agents.models.scripted import ScriptedModel
from chorus_agents.traffic.common import ADVISORIES, INCIDENTS

SCRIPT = Path(__file__).with_name("public_transport.script.yaml")
"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the city's public transport controller. You are shown confirmed traffic "
    "incidents from traffic.incidents, with the bus lines through the incident's site and "
    "through the queue behind it. Reroute the lines through the site around it; otherwise "
    "hold the lines through the queue at their previous stop; otherwise take no action. "
    "Answer in one sentence that starts with the action (reroute, hold or none) and a colon."
)
BUS_LINES: Mapping[str, tuple[str, ...]] = {
    "10": ("A1-A2", "A2-A3"),
    "20": ("B1-B2", "B2-B3"),
    "30": ("A1-A2", "A2-B2", "B2-B3"),
    "40": ("A1-B1", "B1-B2"),
    "50": ("A2-A3", "A3-B3"),
}
"""The bus lines and the segments each runs along."""
ACTIONS = ("reroute", "hold", "none")


def lines_through(segment: str) -> list[str]:
    """The bus lines that run along ``segment``, by number."""
    return sorted(line for line, route in BUS_LINES.items() if segment in route)


class PublicTransportAgent(Handler):
    """The ``public-transport`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(
        self, model: ModelProvider | None = None, *, max_steps: int = 2, topic_prefix: str = ""
    ) -> None:
        self.incidents = topic_prefix + INCIDENTS
        self.advisories = topic_prefix + ADVISORIES
        self.model = model if model is not None else ScriptedModel.from_file(SCRIPT)
        self.max_steps = max_steps

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.incidents:
            return
        record = event.value
        if not isinstance(record, Mapping) or record.get("action") != "respond":
            return
        site = str(record.get("site") or "")
        segments = [str(s) for s in record.get("segments") or ()]
        on_site = lines_through(site)
        queue = sorted({line for s in segments if s != site for line in lines_through(s)})
        queue = [line for line in queue if line not in on_site]
        text = f"Event on {event.topic} (key {event.key}):\n" + json.dumps(
            record, ensure_ascii=False
        )
        if on_site:
            text += "\nLines through the site: " + ", ".join(on_site)
        if queue:
            text += "\nLines through the queue: " + ", ".join(queue)
        loop = InstructedAgent(
            agent=ctx.agent,
            instructions=INSTRUCTIONS,
            model=self.model,
            audit=ctx.audit,
            max_steps=self.max_steps,
        )
        reply = await loop.run(
            text,
            task_id=f"{event.topic}/{event.partition}/{event.offset}",
            context_id=event.key or "",
        )
        answer = (reply.text or "").strip()
        word = answer.partition(":")[0].strip().lower()
        action = word if word in ACTIONS else "none"
        incident = record.get("incident")
        ctx.publish(
            self.advisories,
            {
                "incident": incident,
                "site": site,
                "segments": segments,
                "action": action,
                "lines": {"site": on_site, "queue": queue},
                "advisory": answer,
            },
            key=site,
        )
        ctx.audit.record(
            "decision", action=action, incident=incident, signal_id=incident, site=site
        )

    async def aclose(self) -> None:
        """Closes the model's client."""
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()
