"""The operator's Prometheus metrics, and the HTTP server that exposes them.

- ``chorus_operator_reconciles_total{kind, result}``: reconciles by kind (``Agent``,
  ``Tool``) and result (``ok``, ``spec_invalid``, ``dependency_not_ready``, ``error``);
- ``chorus_operator_reconcile_duration_seconds{kind}``: how long each took (once running);
- ``chorus_operator_reconcile_wait_seconds{kind}``: how long each waited for its object's
  previous run and for a free slot (``CHORUS_MAX_CONCURRENT_RECONCILES``);
- ``chorus_operator_errors_total{kind, reason}``: reconciles that failed, by reason;
- ``chorus_operator_writes_total{kind, outcome}``: children created, updated or deleted
  (a no-op reconcile adds nothing here);
- ``chorus_operator_status_writes_total{kind}``: status patches of Agents and Tools.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

RECONCILES = Counter(
    "chorus_operator_reconciles_total", "Reconciles by kind and result", ["kind", "result"]
)
DURATION = Histogram(
    "chorus_operator_reconcile_duration_seconds",
    "How long one reconcile took",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WAIT = Histogram(
    "chorus_operator_reconcile_wait_seconds",
    "How long a reconcile waited before it ran",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
ERRORS = Counter("chorus_operator_errors_total", "Failed reconciles by reason", ["kind", "reason"])
WRITES = Counter(
    "chorus_operator_writes_total", "Children written, by kind and outcome", ["kind", "outcome"]
)
STATUS_WRITES = Counter(
    "chorus_operator_status_writes_total", "Status patches of Agents and Tools", ["kind"]
)


def serve(port: int) -> None:
    """Serves ``/metrics`` on ``port`` (all interfaces) in a background thread; 0: off."""
    if port:
        start_http_server(port)
