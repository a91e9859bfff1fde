"""Golden files: what the model builds for each case, compared after removing volatile
fields. A missing or stale golden fails with the command that regenerates it."""

from __future__ import annotations

import os

import pytest

from tests.operator.model.golden import OUTPUTS, REGENERATE, build_case, cases, render


@pytest.mark.unit
@pytest.mark.parametrize("case", cases())
def test_golden(case: str) -> None:
    actual = render(build_case(case))
    path = OUTPUTS / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    if not path.exists():
        pytest.fail(f"golden {path} is missing; create it with: {REGENERATE}")
    if path.read_text() != actual:
        pytest.fail(f"golden {path} is stale; review the diff after: {REGENERATE}")


@pytest.mark.unit
def test_every_valid_example_has_a_case() -> None:
    from pathlib import Path

    examples = Path(__file__).parents[3] / "operator/api/src/chorus_api/examples/valid"
    covered = " ".join(
        (OUTPUTS.parent / "inputs" / f"{case}.yaml").read_text().splitlines()[0] for case in cases()
    )
    missing = [p.name for p in sorted(examples.glob("*.yaml")) if p.name not in covered]
    assert missing == [], f"valid examples without a golden case: {missing}"
