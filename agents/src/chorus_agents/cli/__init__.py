"""The ``chorus`` command: run an agent, talk to one, read what flows on Kafka.

Sub-commands live in their own modules: ``chorus agent run`` (:mod:`.agent`),
``chorus send`` (:mod:`.send`), ``chorus tail`` (:mod:`.tail`). Sub-apps added later
(``chorus dev``, ``chorus trace``) register here the same way: a ``typer.Typer`` in their
module, ``app.add_typer(...)`` below.
"""

from __future__ import annotations

import typer

from chorus_agents.cli import agent, mcp, model, send, tail
from chorus_agents.cli import dev as dev_cli
from chorus_agents.cli import trace as trace_cli

app = typer.Typer(
    name="chorus",
    help="Chorus: event-driven AI agents on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(agent.app, name="agent")
app.add_typer(mcp.app, name="mcp")
app.add_typer(model.app, name="model")
app.command("send")(send.send)
app.command("tail")(tail.tail)
app.add_typer(dev_cli.app, name="dev")
app.command("trace")(trace_cli.trace)


def main() -> None:
    """The console script's entry point."""
    app()
