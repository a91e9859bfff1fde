"""Example resources, shipped with the package: valid ones, and invalid ones with the error.

Each file is one YAML document led by comment lines: the first says what the example
shows; in ``invalid/`` two more say what the apiserver answers::

    # minReplicas above maxReplicas.
    # expect: spec.scaling.maxReplicas     <- the field the error names
    # error: maxReplicas must be ...        <- text the error contains

The tests apply every example to a real apiserver and to the Python models; the API
reference (``docs/api.md``) shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

_HEADER_KEYS = ("expect", "error")


@dataclass(frozen=True)
class Example:
    """One example resource file."""

    path: str
    """The path inside the examples directory: ``invalid/agent-bad-topic.yaml``."""
    text: str
    """The file's text, comments included."""
    document: dict[str, Any]
    """The parsed resource."""
    summary: str
    """What the example shows, from its first comment lines."""
    expect: str | None = None
    """For an invalid example: the field path the apiserver's error names."""
    error: str | None = None
    """For an invalid example: text the apiserver's error contains."""

    @property
    def name(self) -> str:
        """The file name without directory and extension: ``agent-bad-topic``."""
        return self.path.rsplit("/", 1)[-1].removesuffix(".yaml")

    @property
    def body(self) -> str:
        """The YAML without the leading comment lines."""
        lines = self.text.splitlines(keepends=True)
        while lines and lines[0].startswith("#"):
            lines.pop(0)
        return "".join(lines)


def parse_example(path: str, text: str) -> Example:
    """Reads an example file; ``ValueError`` if its header or document is malformed."""
    summary: list[str] = []
    header: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        content = line.lstrip("#").strip()
        key, sep, value = content.partition(":")
        if sep and key in _HEADER_KEYS:
            header[key] = value.strip()
        else:
            summary.append(content)
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError(f"example {path}: not a YAML mapping")
    if path.startswith("invalid/") and not {"expect", "error"} <= header.keys():
        raise ValueError(
            f"example {path}: an invalid example needs '# expect:' and '# error:' lines"
        )
    return Example(
        path=path,
        text=text,
        document=document,
        summary=" ".join(summary).strip(),
        expect=header.get("expect"),
        error=header.get("error"),
    )


def _load(folder: str) -> tuple[Example, ...]:
    root = files(__name__) / folder
    entries = sorted(
        (entry for entry in root.iterdir() if entry.name.endswith(".yaml")), key=lambda e: e.name
    )
    return tuple(
        parse_example(f"{folder}/{entry.name}", entry.read_text(encoding="utf-8"))
        for entry in entries
    )


def valid_examples() -> tuple[Example, ...]:
    """The valid examples, by file name."""
    return _load("valid")


def invalid_examples() -> tuple[Example, ...]:
    """The invalid examples, by file name."""
    return _load("invalid")
