"""``chorus model serve --script FILE``: a scripted model as an OpenAI-compatible endpoint
(:mod:`chorus_agents.models.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chorus_agents.models.scripted import ScriptedModel, ScriptError

app = typer.Typer(help="Models: serve a scripted one.", no_args_is_help=True)


@app.command("serve")
def serve(
    script: Annotated[Path, typer.Option(help="The script (YAML): rules, and a latency.")],
    model: Annotated[str, typer.Option(help="The model's name in answers.")] = "scripted",
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "warning",
) -> None:
    """Serves the script at http://HOST:PORT/v1 (Chat Completions) until interrupted."""
    import uvicorn  # here, not at the top: every other `chorus` command starts faster

    from chorus_agents.models.serve import app_for

    try:
        scripted = ScriptedModel.from_file(script)
    except ScriptError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    scripted.model = model
    typer.echo(f"model {model} ({script}): http://{host}:{port}/v1", err=True)
    uvicorn.run(app_for(scripted, model), host=host, port=port, log_level=log_level)
