"""``chorus trace <id>``: the causal chain behind an action, read from the audit topic.

Reads ``chorus.<namespace>.audit`` (or ``--topic``) from the beginning up to its end at
the start, finds the records ``<id>`` names (a record id, a task, context, correlation or
trace id, an id in the records' fields such as an order id) and shows, per root cause:
the chain from the root to the match, then everything the root caused, one handling per
indentation level. Exit code 0 when something matched, 1 when nothing did, 2 when the
topic cannot be read. ``--json`` prints the traces as JSON for scripts.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chorus_agents.cli.options import BootstrapServers, KafkaOptions, Namespace, kafka_options
from chorus_agents.trace import AuditRecord, Trace, flatten, read_audit, summary, trace_in

_KIND_STYLE = {
    "message.received": "cyan",
    "event.received": "cyan",
    "model.call": "magenta",
    "tool.call": "yellow",
    "tool.refused": "red",
    "agent.call": "blue",
    "decision": "bold green",
    "reply.sent": "green",
    "error": "bold red",
}


def trace(
    record_id: Annotated[
        str, typer.Argument(metavar="ID", help="An audit record, task, order, signal... id.")
    ],
    namespace: Namespace = "default",
    bootstrap_servers: BootstrapServers = "localhost:9092",
    topic: Annotated[
        str | None,
        typer.Option("--topic", "-t", help="The audit topic (default chorus.<namespace>.audit)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The traces as JSON.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to read the topic in.")] = 60.0,
    kafka_option: KafkaOptions = None,
) -> None:
    """Shows what led to ID, back to its root cause, and what the root caused."""
    from chorus_api.topics import audit_topic

    from chorus_agents.trace import AuditIndex

    console = Console(highlight=False, soft_wrap=False, width=160)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        source = topic or audit_topic(namespace)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--namespace") from None
    config = {"bootstrap.servers": bootstrap_servers, **kafka_options(kafka_option)}
    try:
        records, skipped = read_audit(config, source, timeout=timeout)
    except (LookupError, RuntimeError, TimeoutError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    index = AuditIndex(records)
    traces = trace_in(index, record_id)
    if as_json:
        typer.echo(json.dumps([_as_json(t) for t in traces], default=str))
    if not traces:
        errors.print(
            f"{record_id}: no audit record names it in {source} ({len(index.records)} records"
            + (f", {skipped} skipped" if skipped else "")
            + ")"
        )
        raise typer.Exit(1)
    if as_json:
        return
    for number, found in enumerate(traces, start=1):
        show(console, found, number=number, of=len(traces))


def _as_json(found: Trace) -> dict[str, Any]:
    return {
        "query": found.query,
        "matched_by": found.matched_by,
        "matches": [r["id"] for r in found.matches],
        "chain": list(found.chain),
        "missing_cause": found.missing_cause,
        "tree": [{"depth": d, "id": r["id"]} for d, r in flatten(found.tree)],
        "truncated": found.truncated,
    }


def _kind(record: AuditRecord) -> Text:
    kind = str(record.get("kind"))
    return Text(kind, style=_KIND_STYLE.get(kind, ""))


def _time(record: AuditRecord) -> str:
    value = str(record.get("time") or "")
    return value.split("T", 1)[-1].removesuffix("Z")[:12]


def show(console: Console, found: Trace, *, number: int = 1, of: int = 1) -> None:
    """One trace for people: a heading, the chain table, the consequences table."""
    root = found.chain[0]
    heading = f"trace {found.query}: matched by {found.matched_by}, {len(found.matches)} record"
    heading += "s" if len(found.matches) != 1 else ""
    if of > 1:
        heading += f" (root {number} of {of})"
    console.print(Text(heading, style="bold"))
    ids = ", ".join(
        f"{name}={root.get(name)}"
        for name in ("task_id", "context_id", "trace_id")
        if root.get(name)
    )
    console.print(f"root {root['id']} by {root.get('agent')} at {root.get('time')}  {ids}")
    if found.missing_cause:
        console.print(f"[yellow]its cause {found.missing_cause} is not in the audit log[/]")

    chain = Table(title="chain (root first)", title_justify="left", expand=False)
    for column in ("#", "time", "agent", "kind", "summary"):
        chain.add_column(column, overflow="fold")
    matched = {r["id"] for r in found.matches}
    for position, record in enumerate(found.chain, start=1):
        chain.add_row(
            str(position),
            _time(record),
            str(record.get("agent")),
            _kind(record),
            summary(record) + ("  <- match" if record["id"] in matched else ""),
        )
    console.print(chain)

    rows = flatten(found.tree)
    if len(rows) > len(found.chain) or found.truncated:
        on_chain = {r["id"] for r in found.chain}
        tree = Table(title="what the root caused", title_justify="left", expand=False)
        for column in ("time", "agent", "kind", "summary"):
            tree.add_column(column, overflow="fold")
        for depth, record in rows:
            agent = ("  " * depth) + ("└ " if depth else "") + str(record.get("agent"))
            style = "bold" if record["id"] in on_chain else ""
            tree.add_row(_time(record), Text(agent, style=style), _kind(record), summary(record))
        console.print(tree)
        if found.truncated:
            console.print(f"[yellow]cut at {len(rows)} records[/]")
    console.print()
