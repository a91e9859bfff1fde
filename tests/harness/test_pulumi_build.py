"""How the Pulumi engine is built (tests/services/pulumi.py), without building it:
stamped with the versions it must answer to, and named with its fix when missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services import prepare
from tests.services import pulumi as engine
from tests.services.base import ServiceError

pytestmark = pytest.mark.unit


def test_a_plain_prepare_builds_the_engine_and_naming_it_builds_it_alone() -> None:
    assert "pulumi" in [step.name for step in prepare.chosen_steps([])]
    assert [step.name for step in prepare.chosen_steps(["pulumi"])] == ["pulumi"]


def test_the_provider_is_stamped_as_the_locked_sdk_asks(tmp_path: Path) -> None:
    # The engine takes only a plugin of exactly the version the SDK's resources ask for.
    lock = tmp_path / "uv.lock"
    lock.write_text('[[package]]\nname = "pulumi-kubernetes"\nversion = "4.99.1"\n')
    assert engine.sdk_kubernetes_version(lock) == "4.99.1"
    locked = engine.sdk_kubernetes_version()
    command = " ".join(engine.provider_build_command(Path("out")))
    assert f"/pkg/version.Version={locked} " in command
    assert engine.plugin_path(tmp_path).parent.name == f"resource-kubernetes-v{locked}"


def test_the_cli_is_stamped_with_the_version_it_is_built_from() -> None:
    command = " ".join(engine.cli_build_command(Path("out")))
    assert f"version.Version={engine.cli_version()} " in command
    assert engine.cli_version() == engine.go_requirement(
        engine.CLI_MODULE, "github.com/pulumi/pulumi/sdk/v3"
    )


def test_a_missing_engine_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "HOME", tmp_path)
    with pytest.raises(ServiceError) as refused:
        engine.check_pulumi()
    assert str(tmp_path / "cli") in str(refused.value)
    assert "python -m tests.services pulumi prepare" in str(refused.value)
