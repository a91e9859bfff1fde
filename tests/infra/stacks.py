"""The committed stacks (``Pulumi.<stack>.yaml`` at the repository root), as tests load them.

The committed prod stack leaves ``chorus:gitops.repoURL`` to the operator of the
installation (``pulumi config set``), so tests set it to ``REPO_URL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from chorus_infra.config import StackConfig, load_stack_file

REPO = Path(__file__).resolve().parents[2]
REPO_URL = "https://git.example.com/chorus.git"
STACKS = ("dev", "prod")


def stack_file(stack: str) -> Path:
    return REPO / f"Pulumi.{stack}.yaml"


def stack_keys(stack: str) -> dict[str, Any]:
    """The committed ``chorus:`` keys of a stack, without their prefix."""
    document = yaml.safe_load(stack_file(stack).read_text())
    return {key.removeprefix("chorus:"): value for key, value in document["config"].items()}


def stack_config(stack: str) -> StackConfig:
    """A stack's configuration as `pulumi up` sees it once the stack is set up."""
    overrides = {"gitops": {"repoURL": REPO_URL}} if stack == "prod" else {}
    return load_stack_file(stack_file(stack), overrides)
