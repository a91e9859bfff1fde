"""Every test is in exactly one tier, the work is handed out as planned, the runner counts
right, and the allowances fit the test command's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import arrange, group_of
from tests.runner import rows_of
from tests.tiers import (
    BUDGET_S,
    CORE,
    E2E,
    IMAGES,
    INTEGRATION,
    MARKERS,
    RUNTIME,
    STAGES,
    TIERS,
    UNIT,
)

pytestmark = pytest.mark.unit


@dataclass
class FakeItem:
    nodeid: str
    markers: set[str] = field(default_factory=set)
    fixturenames: tuple[str, ...] = ()
    added: list[object] = field(default_factory=list)

    def add_marker(self, marker: object) -> None:
        self.added.append(marker)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def test_a_test_in_no_tier_or_in_two_is_refused() -> None:
    items = [
        FakeItem("tests/a.py::test_fine", {"unit"}),
        FakeItem("tests/a.py::test_none"),
        FakeItem("tests/a.py::test_two", {"unit", "e2e"}),
    ]
    with pytest.raises(pytest.UsageError) as refused:
        arrange(items)  # type: ignore[arg-type]
    message = str(refused.value)
    assert "tests/a.py::test_none: no tier marker" in message
    assert "tests/a.py::test_two: unit, e2e" in message
    assert "test_fine" not in message


def test_the_core_stages_fit_in_ten_minutes_with_a_minute_for_install_and_lint() -> None:
    assert list(MARKERS) == [tier.name for tier in TIERS]
    assert [tier.name for tier in TIERS] == ["unit", "integration", "runtime", "e2e", "images"]
    # The tiers of a stage run at once: a stage takes as long as its longest tier.
    core = [max(t.allowance_s for t in stage.tiers) for stage in STAGES if stage.tiers[0] in CORE]
    assert sum(core) + 60 <= 600
    # Later tiers bring their own allowance (the runtime's: 1.5 minutes; the images': 30 s).
    later = [
        max(t.allowance_s for t in stage.tiers) for stage in STAGES if stage.tiers[0] not in CORE
    ]
    assert later == [RUNTIME.allowance_s, IMAGES.allowance_s] == [90, 30]
    assert BUDGET_S - sum(later) == 600


def test_flink_tests_go_out_first_on_one_worker_then_each_e2e_run_alone() -> None:
    items = [
        FakeItem("tests/agents/test_a.py::test_one", {"integration"}),
        FakeItem("tests/e2e/test_up.py::test_run[x]", {"e2e"}),
        FakeItem("tests/flink/test_f.py::test_job", {"integration"}, ("kafka", "flink")),
        FakeItem("tests/agents/test_a.py::test_two", {"integration"}),
        FakeItem("tests/harness/test_flink.py::test_job", {"integration"}, ("flink",)),
    ]
    ordered = list(items)
    arrange(ordered)  # type: ignore[arg-type]
    assert [i.nodeid for i in ordered] == [
        "tests/flink/test_f.py::test_job",
        "tests/harness/test_flink.py::test_job",
        "tests/e2e/test_up.py::test_run[x]",
        "tests/agents/test_a.py::test_one",
        "tests/agents/test_a.py::test_two",
    ]
    groups = {i.nodeid: group_of(i) for i in ordered}  # type: ignore[arg-type]
    assert groups == {
        "tests/flink/test_f.py::test_job": "flink",
        "tests/harness/test_flink.py::test_job": "flink",
        "tests/e2e/test_up.py::test_run[x]": "tests/e2e/test_up.py::test_run[x]",
        "tests/agents/test_a.py::test_one": "tests/agents/test_a.py",
        "tests/agents/test_a.py::test_two": "tests/agents/test_a.py",
    }


def test_the_runner_counts_a_test_by_its_worst_phase(tmp_path: Path) -> None:
    log = tmp_path / "phases.jsonl"
    phases = [
        ("a", "unit", "setup", "passed", 1.0, 1.1),
        ("a", "unit", "call", "passed", 1.1, 2.0),
        ("a", "unit", "teardown", "failed", 2.0, 2.5),  # an error in tear-down
        ("b", "unit", "setup", "skipped", 3.0, 3.1),
        ("b", "unit", "teardown", "passed", 3.1, 3.2),
        ("c", "e2e", "setup", "passed", 0.5, 0.6),
        ("c", "e2e", "call", "passed", 0.6, 9.0),
        ("c", "e2e", "teardown", "passed", 9.0, 9.5),
    ]
    keys = ("nodeid", "tier", "when", "outcome", "start", "stop")
    log.write_text("".join(json.dumps(dict(zip(keys, p, strict=True))) + "\n" for p in phases))
    rows = rows_of(log, [UNIT, INTEGRATION, E2E], exit_code=1)
    assert [(r.name, r.tests, r.passed, r.failed, r.skipped, r.seconds) for r in rows] == [
        ("unit", 2, 0, 1, 1, 2.2),
        ("integration", 0, 0, 0, 0, 0.0),
        ("e2e", 1, 1, 0, 0, 9.0),
    ]
    # A pytest that fails without a failed test (interrupted, nothing collected) fails too.
    assert rows_of(tmp_path / "none.jsonl", [UNIT], exit_code=5)[-1].failed == 1


def test_pytest_xdist_keeps_a_group_on_one_worker(tmp_path: Path) -> None:
    """The groups above need pytest-xdist's loadgroup to work with this pytest: with pytest
    9.2 and xdist 3.8 it silently did not (pyproject.toml pins pytest below 9.2)."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import pytest\n"
        + "".join(
            f"@pytest.mark.xdist_group('g')\ndef test_{n}() -> None:\n    pass\n" for n in range(6)
        )
    )
    isolated = ["-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *isolated,
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-v",
            str(probe),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    passed = [line for line in result.stdout.splitlines() if "PASSED" in line]
    assert len(passed) == 6, result.stdout + result.stderr
    assert all("@g" in line for line in passed), result.stdout
    assert len({line.split("]", 1)[0] for line in passed}) == 1, "the group was split"


@dataclass
class TimedItem:
    nodeid: str
    seconds: float

    def get_closest_marker(self, name: str) -> object | None:
        if name != "seconds" or not self.seconds:
            return None
        return pytest.mark.seconds(self.seconds).mark


def xdist_makespan(seconds: list[float], workers: int) -> float:
    """When the last test ends if xdist's scheduler gets ``seconds`` in this order: worker
    ``i`` is handed tests ``i`` and ``i + workers``, then one more each time it finishes one
    (queued behind the one it holds)."""
    queues = [list(seconds[i : 2 * workers : workers]) for i in range(workers)]
    pending = list(seconds[2 * workers :])
    clocks = [0.0] * workers
    while any(queues):
        w = min((w for w in range(workers) if queues[w]), key=lambda w: clocks[w] + queues[w][0])
        clocks[w] += queues[w].pop(0)
        if pending:
            queues[w].append(pending.pop(0))
    return max(clocks)


def test_the_runtime_tier_pairs_its_longest_tests_with_its_shortest() -> None:
    """The runtime tier's nine tests with the seconds they took (fresh clone, 8322946), in
    collection order, then as ``paired`` orders them for four workers."""
    from tests.conftest import paired

    measured = (72, 80, 30, 22, 60, 20, 20, 11, 8)
    items = [TimedItem(f"t{i}", s) for i, s in enumerate(measured)]
    untimed = TimedItem("plain", 0)
    order: list[Any] = paired([untimed, *items], 4)  # type: ignore[list-item]
    seconds = [i.seconds for i in order]
    assert seconds == [0, 80, 72, 60, 30, 8, 11, 20, 20, 22]
    # The longest test is followed by the shortest only: nothing can end before it does.
    assert xdist_makespan(seconds[1:], 4) == 80 + 8
    # In collection order two long tests shared a worker (72 + 60).
    assert xdist_makespan(list(measured), 4) > 120
