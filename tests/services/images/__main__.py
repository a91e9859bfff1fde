"""The images by hand (as root).

python -m tests.services.images build    # stand-ins and images unless built, then a table
python -m tests.services.images status   # each reference, its input hash, its archive
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from tests.services.base import REPO, ServiceError

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console(highlight=False)


def _say(text: str) -> None:
    console.print(text, markup=False, soft_wrap=True)


@app.command()
def build() -> None:
    """Make the stand-in bases and build the images unless built (progress every 30 s)."""
    from tests.services.images.build import install

    try:
        rows = install(_say)
    except ServiceError as exc:
        _say(str(exc))
        raise typer.Exit(1) from exc
    table = Table("image", "state", "seconds")
    for row in rows:
        table.add_row(row.what, row.state, f"{row.seconds:.1f}")
    console.print(table)


@app.command()
def status() -> None:
    """Show each image's reference, input hash and archive, and whether it is built."""
    from tests.services.images.build import archive, check, images, key

    for image in images():
        path = archive(image)
        source = image.dockerfile.relative_to(REPO)
        _say(f"{image.name}: {image.ref} from {source}, inputs {key(image)}")
        _say(f"  archive: {path}{'' if path.is_file() else ' (not built)'}")
    try:
        check()
    except ServiceError as exc:
        _say(str(exc))
        raise typer.Exit(1) from exc
    console.print("[green]built, and in the storage[/]")


if __name__ == "__main__":
    app()
