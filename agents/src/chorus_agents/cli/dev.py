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
    help="Work on a domain locally: its topology, and running it (`up`).",
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


@app.command("up")
def up(
    domain: DomainName,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many seconds of feeding (wall time).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Inject no incident.")] = False,
    speed: Annotated[
        float | None,
        typer.Option(help="Event-time seconds fed per real second (default: the domain's)."),
    ] = None,
    event_seconds: Annotated[
        float | None, typer.Option(help="Event-time length of the feed (default: the domain's).")
    ] = None,
    keep_running: Annotated[
        bool, typer.Option(help="Keep running after the feed until Ctrl-C.")
    ] = False,
    report_json: Annotated[
        Path | None, typer.Option(help="Also write the report to this file, as JSON.")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Use this Kafka (PLAINTEXT) instead of starting one."),
    ] = None,
    live: Annotated[bool, typer.Option(help="Show the live view.")] = True,
    model_latency: Annotated[
        str | None,
        typer.Option(
            help="Scripted models at a real model's pace: MEDIAN[,SIGMA] seconds, lognormal."
        ),
    ] = None,
    deploy_dir: DeployDir = None,
) -> None:
    """Runs DOMAIN on this machine: Kafka, Flink, MCP servers, agents, a feed; then a report.

    Exit code 0 when every injected incident was detected and acted on (a quiet run: no
    action) and every action's causal chain reaches a signal; 1 otherwise; 2 on bad input
    or a service that would not start.
    """
    import json

    from chorus_agents.dev.report import render
    from chorus_agents.dev.scenarios import scenario
    from chorus_agents.dev.services.base import ServiceError
    from chorus_agents.dev.up import UpOptions
    from chorus_agents.dev.up import up as run_up

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    loaded = load(domain, deploy_dir)
    try:
        chosen = scenario(domain)
    except KeyError as exc:
        err.print(f"[red]error:[/] {exc.args[0]}")
        raise typer.Exit(2) from None
    if model_latency is not None:
        from chorus_agents.dev.model_speed import parse_model_latency, with_model_latency
        from chorus_agents.models.latency import LatencyError

        try:
            loaded = with_model_latency(loaded, parse_model_latency(model_latency))
        except LatencyError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    options = UpOptions(
        domain=loaded,
        scenario=chosen,
        quiet=quiet,
        speed=speed,
        seconds=seconds,
        event_seconds=event_seconds,
        keep_running=keep_running,
        bootstrap_servers=bootstrap_servers,
        live=live and console.is_terminal,
    )
    try:
        run = run_up(options, console)
    except (ServiceError, DomainError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(render(run.report))
    console.print(f"logs: {run.workdir / 'logs'}")
    if report_json is not None:
        report_json.write_text(json.dumps(run.report.to_json(), indent=2) + "\n")
    raise typer.Exit(0 if run.report.ok else 1)
