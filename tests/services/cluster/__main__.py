"""The one-node test cluster by hand (as root).

python -m tests.services.cluster gonogo   # build, start, run the probe pod, tear down, verdict
python -m tests.services.cluster build    # build the binaries and images only
python -m tests.services.cluster clean    # tear down what a crashed run left
"""

from __future__ import annotations

import typer
from rich.console import Console

from tests.services.base import ServiceError

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console()


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def gonogo() -> None:
    """Start the cluster, run the probe pod, tear down; exit 0 on a go, 1 on a no-go."""
    from tests.services.cluster.gonogo import gonogo as run

    raise typer.Exit(0 if run(console) else 1)


@app.command()
def build() -> None:
    """Build the cluster's binaries and images unless built (progress every 30 s)."""
    from tests.services.cluster import build as binaries

    try:
        report = binaries.install(_say)
    except ServiceError as exc:
        _say(str(exc))
        raise typer.Exit(1) from exc
    _say(report.summary())


@app.command()
def clean() -> None:
    """Stop a cluster a crashed run left, and undo its changes to the host."""
    from tests.services.cluster.node import teardown

    report = teardown(_say)
    for line in report.done:
        _say(f"  {line}")
    for line in report.left:
        _say(f"  LEFT: {line}")
    raise typer.Exit(1 if report.left else 0)


if __name__ == "__main__":
    app()
