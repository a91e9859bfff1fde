"""Start, stop and inspect the test services by hand.

    python -m tests.services kafka up      # prints the handle (bootstrap servers, ...)
    python -m tests.services kafka down
    python -m tests.services status
"""

from __future__ import annotations

import dataclasses
import json

import typer
from rich.console import Console
from rich.table import Table

from tests.services import registry

app = typer.Typer(add_completion=False, help=__doc__)
console = Console()


@app.command()
def up(name: str) -> None:
    """Install (once) and start a service; it keeps running until `down`."""
    service = registry()[name]
    with console.status(f"starting {name}..."):
        handle = service.up()
    console.print_json(json.dumps(dataclasses.asdict(handle), default=str))  # type: ignore[call-overload]


@app.command()
def down(name: str) -> None:
    """Stop a service started with `up`."""
    stopped = registry()[name].down()
    console.print(f"{name}: {'stopped' if stopped else 'was not running'}")


@app.command()
def status() -> None:
    """A table of the services and whether they run."""
    table = Table("service", "state", "handle")
    for name, service in registry().items():
        handle = service.running()
        state = "[green]up[/]" if handle else "[dim]down[/]"
        details = json.dumps(dataclasses.asdict(handle), default=str) if handle else ""  # type: ignore[call-overload]
        table.add_row(name, state, details)
    console.print(table)


if __name__ == "__main__":
    app()
