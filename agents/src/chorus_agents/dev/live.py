"""What ``chorus dev up`` shows while it runs, and what it observes for the report.

:class:`Observer` reads every topic of the run (``read_committed``, from the beginning) in
a thread: it counts records per topic, keeps the signals (the streams' outputs) with the
time each was seen, and the audit records. :func:`view` renders a snapshot of it and of the
feed with rich: events per topic, the latest decisions and tool calls, and the incidents
and whether a signal about them has arrived yet.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from chorus_agents.dev.report import Injected, SeenSignal, build_report, is_action
from chorus_agents.dev.scenarios import Scenario


@dataclass
class FeedProgress:
    """The feed's progress, updated by the feeding thread."""

    total: int = 0
    fed: int = 0
    event_seconds: float = 0.0
    done: bool = False
    injected: list[Injected] = field(default_factory=list)
    fed_at: list[tuple[float, float]] = field(default_factory=list)


class Observer:
    """Consumes the run's topics in a thread; see the module docstring."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        topics: Sequence[str],
        *,
        signal_topics: Sequence[str],
        audit_topic: str,
    ) -> None:
        self.config = dict(client_config)
        self.topics = list(topics)
        self.signal_topics = set(signal_topics)
        self.audit_topic = audit_topic
        self.counts: Counter[str] = Counter()
        self.signals: list[SeenSignal] = []
        self.audit: list[dict[str, Any]] = []
        self.recent: deque[str] = deque(maxlen=8)
        self.last_offsets: dict[tuple[str, int], int] = {}
        self.last_record = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chorus-dev-observer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                **self.config,
                "group.id": f"chorus-dev-observer-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "topic.metadata.refresh.interval.ms": 2000,
            }
        )
        consumer.subscribe(self.topics)
        try:
            while not self._stop.is_set():
                for message in consumer.consume(500, timeout=0.2):
                    if message.error() is None:
                        where = (message.topic() or "", message.partition() or 0)
                        self._take(where, message.offset() or 0, message.value())
        finally:
            consumer.close()

    def _take(self, where: tuple[str, int], offset: int, raw: bytes | None) -> None:
        topic = where[0]
        now = time.time()
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = None
        with self._lock:
            self.counts[topic] += 1
            self.last_offsets[where] = offset
            self.last_record = time.monotonic()
            if not isinstance(value, dict):
                return
            if topic in self.signal_topics:
                self.signals.append(SeenSignal(value, now))
            elif topic == self.audit_topic:
                self.audit.append(value)
                if is_action(value) or value.get("kind") == "tool.call":
                    fields = value.get("fields") or {}
                    what = fields.get("action") or f"{fields.get('tool')}.{fields.get('name')}"
                    self.recent.append(f"{value.get('agent')}: {value.get('kind')} {what}")

    def quiet_for(self) -> float:
        """Seconds since the last record arrived on any topic."""
        with self._lock:
            return time.monotonic() - self.last_record

    def last_seen(self) -> dict[tuple[str, int], int]:
        """The offset of the last record read, per (topic, partition)."""
        with self._lock:
            return dict(self.last_offsets)

    def snapshot(self) -> tuple[list[SeenSignal], list[dict[str, Any]]]:
        with self._lock:
            return list(self.signals), list(self.audit)


def view(
    scenario: Scenario, observer: Observer, feed: FeedProgress, *, elapsed: float
) -> RenderableType:
    """The live view: feed progress, events per topic, recent actions, incidents."""
    signals, audit = observer.snapshot()
    with observer._lock:
        counts = dict(observer.counts)
        recent = list(observer.recent)
    header = Text.assemble(
        (f"chorus dev up {scenario.domain}", "bold"),
        f"  {elapsed:5.0f}s  fed {feed.fed}/{feed.total} records",
        f"  (event time +{feed.event_seconds:.0f}s)",
    )
    topics = Table("topic", "records", box=None, pad_edge=False)
    for name, count in sorted(counts.items()):
        topics.add_row(name, str(count))
    incidents = Table("incident", "injected", "signal", "acted", box=None, pad_edge=False)
    # The same judgement as the final report: detected by a signal seen after the
    # injection, acted on by an action whose causation chain starts at such a signal.
    so_far = build_report(
        scenario,
        quiet=False,
        injected=feed.injected,
        signals=signals,
        audit=audit,
        records_fed=feed.fed,
        feed_seconds=elapsed,
    )
    for item, outcome in zip(feed.injected, so_far.incidents, strict=True):
        incidents.add_row(
            item.incident.incident_id,
            "yes" if item.at is not None else "not yet",
            "[green]yes[/]" if outcome.detected else "-",
            f"[green]yes[/] ({outcome.first_action})" if outcome.acted else "-",
        )
    actions = sum(1 for r in audit if is_action(r))
    recent_text = Text("\n".join(recent) or "(no decision or tool call yet)", style="dim")
    return Group(
        header,
        ProgressBar(total=max(1, feed.total), completed=feed.fed, width=60),
        topics,
        Text(f"audit records {len(audit)}, actions {actions}", style="bold"),
        recent_text,
        incidents,
    )
