"""Start, stop and inspect the test services by hand.

python -m tests.services kafka up      # prints the handle (bootstrap servers, ...)
python -m tests.services kafka down
python -m tests.services status        # a table of every service
python -m tests.services prepare       # install every service and tool (what test.sh does)
python -m tests.services kube prepare  # install one
python -m tests.services pulumi prepare  # the Pulumi engine alone (about 25 minutes cold)
"""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tests.services import SERVICES, service

console = Console()


class Action(StrEnum):
    up = "up"
    down = "down"
    status = "status"
    prepare = "prepare"


def as_json(handle: object) -> str:
    return json.dumps(dataclasses.asdict(handle), default=str)  # type: ignore[call-overload]


def status_table(names: list[str]) -> Table:
    table = Table("service", "state", "handle")
    for name in names:
        handle = service(name).running()
        state = "[green]up[/]" if handle else "[dim]down[/]"
        table.add_row(name, state, as_json(handle) if handle else "")
    return table


def main(
    name: Annotated[
        str,
        typer.Argument(help=f"{', '.join(SERVICES)}, helm, images, pulumi, status or prepare"),
    ],
    action: Annotated[Action, typer.Argument()] = Action.status,
) -> None:
    """Install (once) and start a service (`up`), stop it (`down`), show what runs, or
    install every service and tool before a test run (`prepare`; exit 1 if one failed;
    the Pulumi engine only when named: `pulumi prepare`)."""
    if name == "status":
        console.print(status_table(list(SERVICES)))
        return
    if name == "prepare" or action is Action.prepare:
        from tests.services.prepare import prepare

        failures = prepare([] if name == "prepare" else [name], console)
        raise typer.Exit(1 if failures else 0)
    if name not in SERVICES:
        raise typer.BadParameter(f"no service {name!r}; there are: {', '.join(SERVICES)}")
    if action is Action.up:
        with console.status(f"starting {name} (the first start installs it)..."):
            handle = service(name).up()
        console.print_json(as_json(handle))
    elif action is Action.down:
        stopped = service(name).down()
        console.print(f"{name}: {'stopped' if stopped else 'was not running'}")
    else:
        console.print(status_table([name]))


if __name__ == "__main__":
    typer.run(main)
