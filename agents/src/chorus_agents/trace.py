"""``chorus trace <id>``: the causal chain behind an action, from the audit log.

Audit records (:mod:`chorus_agents.audit`) name their cause (``causation_id``), within
an agent and across agents. Given an id, :class:`AuditIndex` finds the records it names:

- an audit record's own ``id``;
- else records whose ``task_id``, ``context_id``, ``correlation_id`` or ``trace_id`` it is;
- else records whose ``fields`` hold it under an id-like key (``id``, ``*_id``, ``*Id``,
  ``*_ids``, ``idempotency_key``, also in nested objects): an order id, a signal id.

:func:`trace` then follows ``causation_id`` from the last matching record (in log order)
back to its root, and builds the root's causal tree (its forward consequences): each
handling's records stay one :class:`Thread`; what a record caused in another handling
(another agent's message, called by an ``agent.call``) is a branch under it. Pure:
records in, :class:`Trace` out; :func:`read_audit` is the only part that touches Kafka.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chorus_agents.audit import parse_record

AuditRecord = Mapping[str, Any]
_ID_KEY = re.compile(r"^(id|.*_id|.*Id|.*_ids|.*Ids|idempotency_key)$")
_IDS = ("task_id", "context_id", "correlation_id", "trace_id")
MAX_TREE = 500
"""Records shown as consequences at most: a root with more is cut (``Trace.truncated``)."""


@dataclass
class Step:
    """One record in a thread, and the threads it caused elsewhere (other handlings)."""

    record: AuditRecord
    branches: list[Thread] = field(default_factory=list)


@dataclass
class Thread:
    """Records of one handling in causal order, each caused by the one before."""

    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class Trace:
    """What ``chorus trace`` shows for one root: the chain to the match, and the tree."""

    query: str
    matched_by: str
    """How the id matched: ``id``, ``task_id``, ..., or ``fields.<key>``."""
    matches: tuple[AuditRecord, ...]
    chain: tuple[AuditRecord, ...]
    """From the root to the last match, each the cause of the next."""
    missing_cause: str | None
    """The root's ``causation_id`` when that record is not in the log."""
    tree: Thread
    """The root and everything it caused (at most :data:`MAX_TREE` records)."""
    truncated: bool = False


def _field_ids(value: Any, path: str, depth: int = 0) -> Iterable[tuple[str, str]]:
    """``(key path, id)`` for every id-like entry of ``value`` (a record's fields)."""
    if depth > 3:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if _ID_KEY.match(str(key)):
                if isinstance(item, str | int) and not isinstance(item, bool):
                    yield sub, str(item)
                elif isinstance(item, list):
                    yield from ((sub, str(v)) for v in item if isinstance(v, str | int))
            if isinstance(item, Mapping | list):
                yield from _field_ids(item, sub, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _field_ids(item, path, depth + 1)


class AuditIndex:
    """Audit records (in log order) indexed by id, by cause, and by the ids they carry."""

    def __init__(self, records: Iterable[AuditRecord]) -> None:
        self.records: list[AuditRecord] = []
        self.by_id: dict[str, AuditRecord] = {}
        self.position: dict[str, int] = {}
        self.children: dict[str, list[AuditRecord]] = defaultdict(list)
        self.by_key: dict[str, dict[str, list[AuditRecord]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for record in records:
            record_id = record.get("id")
            if not isinstance(record_id, str) or record_id in self.by_id:
                continue  # no id, or a duplicate (a replayed write): the first one counts
            self.position[record_id] = len(self.records)
            self.records.append(record)
            self.by_id[record_id] = record
            cause = record.get("causation_id")
            if isinstance(cause, str):
                self.children[cause].append(record)
            for key in _IDS:
                value = record.get(key)
                if isinstance(value, str) and value:
                    self.by_key[value][key].append(record)
            for path, value in _field_ids(record.get("fields") or {}, ""):
                self.by_key[value][f"fields.{path}"].append(record)

    def find(self, query: str) -> tuple[str, list[AuditRecord]]:
        """The records ``query`` names and how (see the module docstring); ``("", [])``."""
        if query in self.by_id:
            return "id", [self.by_id[query]]
        found = self.by_key.get(query) or {}
        for key in _IDS:
            if found.get(key):
                return key, found[key]
        for key in sorted(found):
            if key.startswith("fields.") and found[key]:
                records = sorted(
                    {id(r): r for k in sorted(found) for r in found[k]}.values(),
                    key=lambda r: self.position[r["id"]],
                )
                return key, records
        return "", []

    def chain(self, record: AuditRecord) -> tuple[list[AuditRecord], str | None]:
        """``record`` and its causes back to the root, root first; and the missing cause."""
        chain = [record]
        seen = {record["id"]}
        while True:
            cause = chain[-1].get("causation_id")
            if not isinstance(cause, str) or not cause:
                return chain[::-1], None
            parent = self.by_id.get(cause)
            if parent is None or cause in seen:
                return chain[::-1], cause if parent is None else None
            seen.add(cause)
            chain.append(parent)

    def root(self, record: AuditRecord) -> AuditRecord:
        return self.chain(record)[0][0]

    def tree(self, root: AuditRecord, limit: int = MAX_TREE) -> tuple[Thread, bool]:
        """``root``'s thread with all it caused; True when cut at ``limit`` records."""
        budget = [limit]
        seen: set[str] = set()

        def thread(first: AuditRecord) -> Thread:
            out = Thread()
            current: AuditRecord | None = first
            while current is not None and budget[0] > 0 and current["id"] not in seen:
                seen.add(current["id"])
                budget[0] -= 1
                step = Step(current)
                out.steps.append(step)
                caused = self.children.get(current["id"], [])
                same = [r for r in caused if _same_handling(current, r)]
                follow = same[0] if same else None
                for other in caused:
                    if other is not follow and other["id"] not in seen and budget[0] > 0:
                        step.branches.append(thread(other))
                current = follow
            return out

        built = thread(root)
        return built, budget[0] <= 0 and len(seen) < self._reachable(root)

    def _reachable(self, root: AuditRecord) -> int:
        seen, stack = {root["id"]}, [root["id"]]
        while stack:
            for child in self.children.get(stack.pop(), []):
                if child["id"] not in seen:
                    seen.add(child["id"])
                    stack.append(child["id"])
        return len(seen)


def _same_handling(record: AuditRecord, child: AuditRecord) -> bool:
    return child.get("agent") == record.get("agent") and child.get("correlation_id") == record.get(
        "correlation_id"
    )


def trace(records: Iterable[AuditRecord], query: str, *, limit: int = MAX_TREE) -> list[Trace]:
    """The traces ``query`` leads to: one per distinct root, in log order; empty if none."""
    index = AuditIndex(records)
    return trace_in(index, query, limit=limit)


def trace_in(index: AuditIndex, query: str, *, limit: int = MAX_TREE) -> list[Trace]:
    """:func:`trace` on an index already built."""
    matched_by, matches = index.find(query)
    by_root: dict[str, list[AuditRecord]] = {}
    for record in matches:
        by_root.setdefault(index.root(record)["id"], []).append(record)
    traces = []
    for group in by_root.values():
        last = max(group, key=lambda r: index.position[r["id"]])
        chain, missing = index.chain(last)
        tree, truncated = index.tree(chain[0], limit)
        traces.append(
            Trace(
                query=query,
                matched_by=matched_by,
                matches=tuple(group),
                chain=tuple(chain),
                missing_cause=missing,
                tree=tree,
                truncated=truncated,
            )
        )
    return traces


def flatten(thread: Thread, depth: int = 0) -> list[tuple[int, AuditRecord]]:
    """The tree as rows ``(depth, record)``: a step, then its branches one level deeper."""
    rows: list[tuple[int, AuditRecord]] = []
    for step in thread.steps:
        rows.append((depth, step.record))
        for branch in step.branches:
            rows += flatten(branch, depth + 1)
    return rows


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(record: AuditRecord) -> str:
    """A record in a few words, by kind (model tokens, tool and outcome, decision, ...)."""
    kind = record.get("kind")
    f: Mapping[str, Any] = record.get("fields") or {}
    if kind == "message.received":
        sender = f.get("sender") or "?"
        return f"from {sender}: {_short(f.get('text', ''))!s}"
    if kind == "event.received":
        return f"{f.get('topic')}[{f.get('partition')}]@{f.get('offset')}"
    if kind == "model.call":
        model = "/".join(str(p) for p in (f.get("provider"), f.get("model")) if p)
        if f.get("outcome") == "error":
            return f"{model} step {f.get('step')}: error {_short(f.get('error', ''))}"
        text = (
            f"{model} step {f.get('step')}: "
            f"{f.get('input_tokens', 0)} in / {f.get('output_tokens', 0)} out tokens"
        )
        if f.get("tool_calls"):
            text += f", calls {', '.join(str(c) for c in f['tool_calls'])}"
        return text
    if kind in ("tool.call", "tool.refused"):
        text = f"{f.get('tool')}.{f.get('name')}: {f.get('outcome')}"
        problem = f.get("error") or f.get("reason")
        return text + (f" ({_short(problem)})" if problem else "")
    if kind == "agent.call":
        return f"-> {f.get('target')}: {_short(f.get('text', ''))}"
    if kind == "reply.sent":
        return str(f.get("outcome", ""))
    if kind == "error":
        return _short(f.get("error", ""), 100)
    shown = {k: v for k, v in f.items() if k not in ("agent", "task_id", "context_id")}
    return _short(", ".join(f"{k}={_short(v, 30)}" for k, v in shown.items()), 100)


def read_audit(
    kafka_config: Mapping[str, Any], topic: str, *, timeout: float = 60.0
) -> tuple[list[dict[str, Any]], int]:
    """The audit records of ``topic`` up to the high watermarks at the start, and how many
    values were no audit record (skipped). Committed records only; nothing committed."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    from chorus_agents.kafka import helper_group

    consumer = Consumer(
        {
            **kafka_config,
            "group.id": helper_group(topic, "trace"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise LookupError(f"topic {topic}: {metadata.error.str()}")
        ends: dict[int, int] = {}
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(ends)])
        records: list[dict[str, Any]] = []
        skipped = 0
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic}: not read to its end in {timeout:.0f}s")
            for message in consumer.consume(500, 0.5):
                error = message.error()
                partition = message.partition()
                if partition is None or partition not in ends:
                    continue
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        del ends[partition]  # at the last stable offset
                    elif error.code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
                        raise RuntimeError(f"topic {topic}: {error.str()}")
                    continue
                offset = message.offset()
                if offset is not None and offset >= ends[partition]:
                    del ends[partition]  # written after the start (the end was a marker)
                    continue
                try:
                    records.append(parse_record(message.value() or b""))
                except ValueError:
                    skipped += 1
                if offset is not None and offset >= ends[partition] - 1:
                    del ends[partition]
        return records, skipped
    finally:
        consumer.close()


def kinds(records: Sequence[AuditRecord]) -> list[str]:
    """The kinds of ``records``, in order."""
    return [str(r.get("kind")) for r in records]
