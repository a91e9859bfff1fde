"""``chorus dev``: working on a domain on this machine.

``chorus dev topology <domain>`` draws the domain's graph (topics, Flink streams, agents,
tools) from its manifests in ``agents/<domain>/deploy``, as Mermaid or SVG. Further
commands (``up``) are added to :data:`app` in the same way: a function decorated with
``@app.command(...)``, sharing :data:`DeployDir` to locate the domain.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chorus_agents.dev.manifests import Domain, DomainError, find_deploy_dir, load_domain

app = typer.Typer(
    name="dev",
    help="Work on a domain locally: its topology (and, later, running it).",
    no_args_is_help=True,
)

DomainName = Annotated[str, typer.Argument(help="The domain: agents/<domain>/deploy.")]
DeployDir = Annotated[
    Path | None,
    typer.Option(
        "--deploy-dir",
        "-d",
        help="The domain's kustomize directory (default: agents/<domain>/deploy, "
        "looked for in the working directory and above).",
    ),
]


class Format(StrEnum):
    MERMAID = "mermaid"
    SVG = "svg"


def load(domain: str, deploy_dir: Path | None) -> Domain:
    """The domain's resources, or exit 2 with the error naming the file."""
    try:
        return load_domain(deploy_dir or find_deploy_dir(domain), name=domain)
    except DomainError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command("topology")
def topology(
    domain: DomainName,
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="mermaid (text) or svg.")
    ] = Format.MERMAID,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    deploy_dir: DeployDir = None,
) -> None:
    """Prints (or writes) the graph of DOMAIN: topics, streams, agents, tools."""
    from chorus_agents.dev.svg import to_svg
    from chorus_agents.dev.topology import build_topology, to_mermaid

    loaded = load(domain, deploy_dir)
    try:
        graph = build_topology(loaded)
    except DomainError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    text = to_mermaid(graph) if output_format is Format.MERMAID else to_svg(graph)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"{domain}: {len(graph.nodes)} nodes, {len(graph.edges)} edges -> {output}"
        )
