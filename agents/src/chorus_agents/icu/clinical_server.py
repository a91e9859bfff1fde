"""The EHR and the device gateway as one MCP server (official SDK, streamable HTTP or stdio).

    chorus mcp serve chorus_agents.icu.clinical_server --port 8000  # the ward (create_server)
    python -m chorus_agents.icu.clinical_server --port 8000        # streamable HTTP at /mcp
    python -m chorus_agents.icu.clinical_server --transport stdio
    python -m chorus_agents.icu.clinical_server --vitals-bootstrap-servers localhost:9092

Tools: the EHR's ``get_patient``, ``list_medication_orders``, ``order_medication``,
``hold_medication`` and ``discontinue_medication``; the device gateway's
``get_latest_vitals``, ``list_alarms``, ``acknowledge_alarm`` and
``set_monitoring_interval``; ``get_vitals_feed_status``. Agents are allow-listed per tool.
A refused operation is a tool error (``isError``) whose text names the rule. The
idempotency key is taken from the call's ``_meta`` (``chorus/idempotency-key``), which the
Chorus tool gateway sets per call, or from the ``idempotency_key`` argument.

With a broker (``CHORUS_BOOTSTRAP_SERVERS``, which is what ``chorus mcp serve`` and the
Tool use, or ``--vitals-bootstrap-servers``), the server tails ``icu.vitals`` into the
device gateway while it runs (:mod:`.vitals_feed`, started and stopped by the server's
lifespan); without one it needs no Kafka and the monitors know only what they are told.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer

from chorus_agents import mcpserver
from chorus_agents.icu.devices import DeviceGateway, DeviceRefused
from chorus_agents.icu.ehr import Ehr, MedicationOrder, MedicationRefused
from chorus_agents.icu.vitals_feed import FeedConfig, VitalsFeed, add_arguments, config_from_args
from chorus_agents.icu.ward import ward_devices, ward_ehr
from chorus_agents.mcpserver import refusals


def _order(order: MedicationOrder) -> dict[str, Any]:
    return {k: (str(v) if k == "status" else v) for k, v in asdict(order).items()}


def build_server(
    ehr: Ehr, devices: DeviceGateway, *, feed: FeedConfig | None = None
) -> MCPServer[Any]:
    """An MCP server whose tools act on ``ehr`` and ``devices``; with ``feed``, a
    :class:`~chorus_agents.icu.vitals_feed.VitalsFeed` fills ``devices`` while it runs."""
    vitals = VitalsFeed(devices, feed) if feed is not None else None

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        if vitals is None:
            yield {}
            return
        vitals.start()
        try:
            yield {}
        finally:
            await anyio.to_thread.run_sync(vitals.stop)

    server: MCPServer[Any] = MCPServer(
        "clinical",
        instructions="ICU systems: medication orders (EHR) and bedside monitors.",
        lifespan=lifespan,
    )

    @server.tool(description="A patient: bed, allergies, live medication orders.")
    def get_patient(patient_id: str) -> dict[str, Any]:
        with refusals("lookup", MedicationRefused):
            return {
                **asdict(ehr.patient(patient_id)),
                "medication_orders": [_order(o) for o in ehr.orders(patient_id, live_only=True)],
            }

    @server.tool(description="A patient's medication orders, discontinued ones included.")
    def list_medication_orders(patient_id: str) -> dict[str, Any]:
        with refusals("lookup", MedicationRefused):
            return {"orders": [_order(o) for o in ehr.orders(patient_id)]}

    @server.tool(
        description=(
            "Order a drug from the formulary for a patient, dose in the drug's unit. Refused "
            "above the drug's maximum dose, for a drug the patient is allergic to, and when "
            "an active or held order for the drug exists."
        )
    )
    def order_medication(
        patient_id: str,
        drug: str,
        dose: float,
        route: str = "iv",
        frequency: str = "once",
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("medication order", MedicationRefused):
            order = ehr.prescribe(patient_id, drug, dose, route, frequency, idempotency_key=key)
        return _order(order)

    @server.tool(description="Hold an active medication order; a reason is required.")
    def hold_medication(
        order_id: str,
        reason: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("hold", MedicationRefused):
            return _order(ehr.hold(order_id, reason, idempotency_key=key))

    @server.tool(description="Discontinue an active or held medication order.")
    def discontinue_medication(
        order_id: str,
        reason: str = "",
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("discontinuation", MedicationRefused):
            return _order(ehr.discontinue(order_id, reason, idempotency_key=key))

    @server.tool(description="A patient's latest observation of each vital sign.")
    def get_latest_vitals(patient_id: str) -> dict[str, Any]:
        with refusals("lookup", DeviceRefused):
            latest = devices.latest(patient_id)
            return {
                "patient_id": patient_id,
                "monitoring_interval_seconds": devices.interval(patient_id),
                "vitals": {p: asdict(o) for p, o in latest.items()},
            }

    @server.tool(description="Monitor alarms, of one patient or all; active_only skips acked.")
    def list_alarms(patient_id: str | None = None, active_only: bool = False) -> dict[str, Any]:
        with refusals("lookup", DeviceRefused):
            return {
                "alarms": [asdict(a) for a in devices.alarms(patient_id, active_only=active_only)]
            }

    @server.tool(description="Acknowledge an active alarm in someone's name.")
    def acknowledge_alarm(
        alarm_id: str,
        by: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("acknowledgement", DeviceRefused):
            return asdict(devices.acknowledge(alarm_id, by, idempotency_key=key))

    @server.tool(description="Set how often a patient's monitor reports, in seconds (15 to 3600).")
    def set_monitoring_interval(
        patient_id: str,
        seconds: int,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("interval", DeviceRefused):
            interval = devices.set_interval(patient_id, seconds, idempotency_key=key)
        return {"patient_id": patient_id, "monitoring_interval_seconds": interval}

    @server.tool(
        description=(
            "The monitors' feed from the vitals topic: whether it runs, records read, "
            "observed and skipped (by reason)."
        )
    )
    def get_vitals_feed_status() -> dict[str, Any]:
        return vitals.status() if vitals is not None else {"enabled": False}

    return server


def create_server() -> MCPServer[Any]:
    """The reference ward (:mod:`.ward`: antihypertensives on the formulary, the standing
    orders placed) and its monitors, fed from the vitals topic when the environment names
    a broker (:meth:`FeedConfig.from_env`): what ``chorus mcp serve`` runs."""
    return build_server(ward_ehr(), ward_devices(), feed=FeedConfig.from_env())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m``: serves the ward as :func:`create_server` does, the feed configured by
    ``--vitals-*`` options (their defaults from the environment)."""
    parser = mcpserver.argument_parser("python -m chorus_agents.icu.clinical_server")
    add_arguments(parser)
    args = parser.parse_args(argv)
    server = build_server(ward_ehr(), ward_devices(), feed=config_from_args(args))
    return mcpserver.serve(server, args)


if __name__ == "__main__":
    raise SystemExit(main())
