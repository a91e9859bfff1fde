"""Every test is in exactly one tier, and the tiers' allowances fit the test command's."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.conftest import pytest_collection_modifyitems
from tests.tiers import MARKERS, TIERS

pytestmark = pytest.mark.unit


@dataclass
class FakeItem:
    nodeid: str
    markers: set[str] = field(default_factory=set)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def test_a_test_in_no_tier_or_in_two_is_refused() -> None:
    items = [
        FakeItem("tests/a.py::test_fine", {"unit"}),
        FakeItem("tests/a.py::test_none"),
        FakeItem("tests/a.py::test_two", {"unit", "e2e"}),
    ]
    with pytest.raises(pytest.UsageError) as refused:
        pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    message = str(refused.value)
    assert "tests/a.py::test_none: no tier marker" in message
    assert "tests/a.py::test_two: unit, e2e" in message
    assert "test_fine" not in message


def test_the_tiers_fit_in_ten_minutes_with_room_for_lint_and_prepare() -> None:
    assert list(MARKERS) == [tier.name for tier in TIERS]
    assert sum(tier.allowance_s for tier in TIERS) <= 600 - 60
