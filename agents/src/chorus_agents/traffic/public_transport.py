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
- and the advisory already in force for the site, if any, as ``In force for <site>:
  <action> since incident <id>: <advisory>``: the job writes an incident a minute while a
  jam lasts, and buses should not be told again what they are already doing. The gate
  remembers the last advisory it published for each site (:class:`InForce`) while the
  site's incidents keep coming less than :data:`IN_FORCE_SECONDS` apart. The memory is
  the replica's: after a restart, or a site moved to another replica, the first incident
  is advised again (a repeated advisory, never a lost one). An input handled again (its
  transaction aborted) does not see its own advisory as in force;
- the model decides: the spec's model (``ctx.model``); with the offline ``scripted``
  provider, the spec's ``model.script``: nothing when an advisory is in force, else
  reroute the lines through the site, else hold the lines through the queue, else
  nothing. Its reply starts with the action;
- the gate publishes the model's advisory on ``traffic.transit-advisories`` (key: the
  site)::

      {"incident", "site", "segments", "action": "reroute"|"hold"|"none",
       "lines": {"site": [...], "queue": [...]}, "advisory"}

  and audits a ``decision`` naming the incident (beside the loop's ``model.call`` and
  ``decision``).

Why a gate in code: an instructed agent audits its answer but publishes nothing; the
gate decides only which incidents reach the model. The Agent keeps ``instructions`` and
``model`` in its spec; the gate uses the same :data:`INSTRUCTIONS` (a test compares them)
and the spec's model (``ctx.model``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property

from chorus_agents.domain import GatedInstructedAgent
from chorus_agents.handler import Context, DomainEvent
from chorus_agents.traffic.common import ADVISORIES, INCIDENTS

"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the city's public transport controller. You are shown confirmed traffic "
    "incidents from traffic.incidents, with the bus lines through the incident's site and "
    "through the queue behind it. Reroute the lines through the site around it; otherwise "
    "hold the lines through the queue at their previous stop; otherwise take no action. "
    "When an advisory for the site is already in force (shown as In force), take no action "
    "either. Answer in one sentence that starts with the action (reroute, hold or none) "
    "and a colon."
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
IN_FORCE_SECONDS = 180.0
"""An advisory stays in force while its site's incidents are at most this far apart (their
windows' ends, event time)."""


@dataclass(frozen=True)
class InForce:
    """The advisory last published for a site, and the last incident window it covered."""

    incident: str
    action: str
    advisory: str
    window_end: datetime


def window_end(record: Mapping[str, object]) -> datetime | None:
    """The incident's window end (``traffic-monitoring`` copies the job's), if readable."""
    try:
        return datetime.fromisoformat(str(record.get("window_end")))
    except ValueError:
        return None


def lines_through(segment: str) -> list[str]:
    """The bus lines that run along ``segment``, by number."""
    return sorted(line for line, route in BUS_LINES.items() if segment in route)


class PublicTransportAgent(GatedInstructedAgent):
    """The ``public-transport`` agent (no tools); see the module docstring."""

    INSTRUCTIONS = INSTRUCTIONS
    USES_TOOLS = False
    DEFAULT_MAX_STEPS = 2

    @cached_property
    def in_force(self) -> dict[str, InForce]:
        """The advisory in force per site (see the module docstring)."""
        return {}

    def shown_in_force(self, site: str, incident: str, ends: datetime | None) -> InForce | None:
        """The advisory in force for ``site`` as the model is shown it for ``incident``."""
        found = self.in_force.get(site)
        if found is None or ends is None or found.incident == incident:
            return None
        gap = (ends - found.window_end).total_seconds()
        return found if 0 <= gap <= IN_FORCE_SECONDS else None

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.topic(INCIDENTS):
            return
        record = event.value
        if not isinstance(record, Mapping) or record.get("action") != "respond":
            return
        site = str(record.get("site") or "")
        segments = [str(s) for s in record.get("segments") or ()]
        on_site = lines_through(site)
        queue = sorted({line for s in segments if s != site for line in lines_through(s)})
        queue = [line for line in queue if line not in on_site]
        extra = ""
        if on_site:
            extra += "\nLines through the site: " + ", ".join(on_site)
        if queue:
            extra += "\nLines through the queue: " + ", ".join(queue)
        incident = str(record.get("incident") or "")
        ends = window_end(record)
        shown = self.shown_in_force(site, incident, ends)
        if shown is not None:
            extra += (
                f"\nIn force for {site}: {shown.action} since incident {shown.incident}: "
                f"{shown.advisory}"
            )
        reply, _ = await self.consult_event(event, ctx, extra=extra)
        answer = (reply.text or "").strip()
        word = answer.partition(":")[0].strip().lower()
        action = word if word in ACTIONS else "none"
        if ends is not None and action != "none":
            self.in_force[site] = InForce(incident, action, answer, ends)
        elif ends is not None and shown is not None:
            self.in_force[site] = replace(shown, window_end=ends)
        ctx.publish(
            self.topic(ADVISORIES),
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
