"""OpenTelemetry for the agent: spans per handled message and event, W3C context in Kafka headers.

- :func:`setup_tracing` installs the SDK's ``TracerProvider`` once per process (spans then
  have ids even without an exporter, so a trace id travels agent to agent). An OTLP
  exporter is added only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and an OTLP exporter
  package (``opentelemetry-exporter-otlp-proto-http`` or ``-grpc``) is installed.
- :func:`extract` reads ``traceparent``/``tracestate`` from a record's headers,
  :func:`inject` writes the running span's into a header map.
- :class:`TracingOutbox` stamps every record the agent produces with the trace context of
  the span that produced it (docs/a2a-kafka-binding.md), so the trace travels over Kafka.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract as _extract
from opentelemetry.propagate import inject as _inject
from opentelemetry.trace import Span, SpanKind

from chorus_agents.binding.codec import TRACE_HEADERS, OutRecord
from chorus_agents.binding.outbox import Outbox

log = logging.getLogger(__name__)

TRACER = "chorus_agents"
_EXPORTERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)


def setup_tracing(service_name: str) -> None:
    """Installs the SDK tracer provider (once per process); see the module docstring.

    A provider installed before (by a test, or by the host application) is kept.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        exporter = _otlp_exporter()
        if exporter is None:
            log.warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but no OTLP exporter is installed; "
                "install opentelemetry-exporter-otlp-proto-http to export spans"
            )
        else:
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def _otlp_exporter() -> Any:
    import importlib

    for name in _EXPORTERS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.OTLPSpanExporter()
    return None


_tracer: list[tuple[trace.TracerProvider, trace.Tracer]] = []
"""The runtime's tracer and its provider: ``get_tracer`` costs a warnings filter and an
object or two per call (about 5 % of a no-op message's CPU when called per span)."""


def tracer() -> trace.Tracer:
    """The runtime's tracer (of the provider installed at the time of the call)."""
    provider = trace.get_tracer_provider()
    if not _tracer or _tracer[0][0] is not provider:
        _tracer[:] = [(provider, provider.get_tracer(TRACER))]
    return _tracer[0][1]


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """The trace context carried by ``headers`` (an empty context when there is none)."""
    return _extract({k: v for k, v in headers.items() if k in TRACE_HEADERS})


def inject() -> dict[str, str]:
    """The running span's ``traceparent`` (and ``tracestate``); empty outside a span."""
    carrier: dict[str, str] = {}
    _inject(carrier)
    return carrier


def trace_id() -> str | None:
    """The running span's trace id (32 hex digits), or ``None``."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@contextlib.contextmanager
def span(
    name: str,
    *,
    headers: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span as the running one; a child of the context in ``headers`` when given."""
    parent = extract(headers) if headers is not None else None
    with tracer().start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes={k: v for k, v in (attributes or {}).items() if v is not None},
    ) as current:
        yield current


def stamp(record: OutRecord) -> OutRecord:
    """``record`` with the running span's trace headers (they replace what it carried).

    Outside a span the record is returned as it is: answers keep the trace context the
    server copied from their request.
    """
    carrier = inject()
    if not carrier:
        return record
    headers = tuple((k, v) for k, v in record.headers if k not in TRACE_HEADERS)
    encoded = tuple((k, v.encode("ascii")) for k, v in carrier.items())
    return OutRecord(record.topic, record.key, record.value, headers + encoded)


class TracingOutbox(Outbox):
    """An :class:`Outbox` that stamps each record with the trace context of its producer."""

    def append(self, record: OutRecord) -> None:
        super().append(stamp(record))
