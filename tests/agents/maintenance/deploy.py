"""The maintenance domain's manifests (``agents/maintenance/deploy``), read for the tests.

A deliberately small reader: the base's ``resources`` files parsed with
``chorus_api.load_resources`` (the overlay only sets the namespace and resources).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from chorus_api import Agent, Resource, Tool, load_resources

DEPLOY = Path(__file__).resolve().parents[3] / "agents" / "maintenance" / "deploy"
BASE = DEPLOY / "base"


def base_resources() -> list[Resource]:
    """Every resource the base lists, in its order."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    found: list[Resource] = []
    for entry in kustomization["resources"]:
        found.extend(load_resources((BASE / entry).read_text(encoding="utf-8")))
    return found


def agents() -> dict[str, Agent]:
    return {r.metadata.name: r for r in base_resources() if isinstance(r, Agent)}


def tools() -> dict[str, Tool]:
    return {r.metadata.name: r for r in base_resources() if isinstance(r, Tool)}
