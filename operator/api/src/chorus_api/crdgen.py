"""``python -m chorus_api.crdgen [--check] [--root DIR]``: write or check the generated files.

The generated files are the CRDs in ``charts/chorus-operator/crds/`` (one per kind) and
the API reference ``docs/api.md``. Without ``--check`` they are (re)written; with it,
nothing is written and the exit status is 1 when any file is missing or stale, with a
message naming it and the command that regenerates it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chorus_api.apidocs import render_api_docs
from chorus_api.crd import KINDS, REGENERATE, render_crd

CRD_DIR = Path("charts/chorus-operator/crds")
API_DOCS = Path("docs/api.md")


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest ancestor of ``start`` (the working directory)
    that holds ``charts/chorus-operator``, else the checkout this package lives in.
    """
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents, *Path(__file__).resolve().parents]
    for candidate in candidates:
        if (candidate / "charts" / "chorus-operator").is_dir():
            return candidate
    raise FileNotFoundError("no charts/chorus-operator above the working directory; pass --root")


def generated_files(root: Path) -> dict[Path, str]:
    """Every generated file under ``root`` and the text it should have."""
    files = {root / CRD_DIR / info.filename: render_crd(info) for info in KINDS}
    files[root / API_DOCS] = render_api_docs()
    return files


def stale_files(root: Path) -> list[Path]:
    """The generated files under ``root`` that are missing or differ from the models."""
    return [
        path
        for path, text in generated_files(root).items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def write_files(root: Path) -> list[Path]:
    """Writes the generated files that changed; returns them."""
    written = []
    for path, text in generated_files(root).items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m chorus_api.crdgen", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if a file is stale"
    )
    parser.add_argument(
        "--root", type=Path, help="the repository root (default: found from the cwd)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve() if args.root else find_root()
    if args.check:
        stale = stale_files(root)
        for path in stale:
            print(
                f"stale: {path.relative_to(root)} differs from the models; run: {REGENERATE}",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in write_files(root):
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
