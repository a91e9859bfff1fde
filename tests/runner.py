"""Runs the test stages one after another and ends with a table: tier, tests, passed, seconds.

    python -m tests.runner                          # every stage (what scripts/test.sh runs)
    python -m tests.runner --tier integration,e2e   # the stages holding these tiers
    python -m tests.runner -k kafka                 # any pytest arguments: one pytest run

Each stage (tests/tiers.py) is its own pytest, with pytest-xdist workers where the stage
says so. The services a stage needs are started once, before it, and every worker reuses
them (a service already started by hand is reused and left running). A tier's seconds run
from its first test's start to its last test's end; tiers of one stage overlap. The last
line sums every tier in the form CI reads: ``total: N passed, N failed, N skipped``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.services import service
from tests.services.base import CACHE, REPO, ServiceError
from tests.tiers import BUDGET_S, STAGES, Stage, Tier

console = Console(highlight=False)

RESULTS = CACHE / "test-results"
"""Each stage's log of test phases (``<stage>.jsonl``) from the last run."""


@dataclass(frozen=True)
class Row:
    """One line of the table: a tier's counts and seconds (or a whole pytest run's)."""

    name: str
    tests: int
    passed: int
    failed: int
    skipped: int
    seconds: float
    allowance_s: float | None = None


def outcomes(log: Path) -> dict[str, tuple[str, str, float, float]]:
    """Per test: (tier, outcome, start, stop) from a ``CHORUS_TIER_LOG`` file.

    A test failed if any phase failed (an error in set-up or tear-down too), was skipped
    if a phase was skipped and none failed, and passed otherwise."""
    found: dict[str, tuple[str, str, float, float]] = {}
    if not log.exists():
        return found
    for line in log.read_text().splitlines():
        phase = json.loads(line)
        tier, outcome, start, stop = found.get(
            phase["nodeid"], (phase["tier"], "passed", phase["start"], phase["stop"])
        )
        if phase["outcome"] == "failed" or outcome == "failed":
            outcome = "failed"
        elif phase["outcome"] == "skipped":
            outcome = "skipped"
        found[phase["nodeid"]] = (
            tier,
            outcome,
            min(start, phase["start"]),
            max(stop, phase["stop"]),
        )
    return found


def rows_of(log: Path, tiers: Sequence[Tier], exit_code: int) -> list[Row]:
    by_tier: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for name, outcome, start, stop in outcomes(log).values():
        by_tier[name].append((outcome, start, stop))
    rows = []
    for tier in tiers:
        tests = by_tier.get(tier.name, [])
        passed, failed, skipped = (
            sum(1 for o, _, _ in tests if o == k) for k in ("passed", "failed", "skipped")
        )
        span = max(s for _, _, s in tests) - min(s for _, s, _ in tests) if tests else 0.0
        rows.append(Row(tier.name, len(tests), passed, failed, skipped, span, tier.allowance_s))
    if exit_code != 0 and not any(r.failed for r in rows):
        # Interrupted, a usage or internal error, or no test at all (5): never a pass.
        rows.append(Row(f"pytest exited with {exit_code}", 0, 0, 1, 0, 0.0))
    return rows


def pytest_run(name: str, args: Sequence[str]) -> tuple[int, Path, float]:
    """Runs pytest with ``args``; returns its exit code, its phase log and its wall time."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"{name.replace(' + ', '+').replace(' ', '_')}.jsonl"
    log.unlink(missing_ok=True)
    started = time.monotonic()
    code = subprocess.call(
        [sys.executable, "-m", "pytest", *args, "--durations=10"],
        cwd=REPO,
        env={**os.environ, "CHORUS_TIER_LOG": str(log)},
    )
    return code, log, time.monotonic() - started


@contextlib.contextmanager
def started(names: Sequence[str]) -> Iterator[None]:
    """The services, up for the block: started here (and stopped after) unless already up."""
    ours = []
    try:
        for name in names:
            made = service(name)
            if made.running() is None:
                console.print(f"[dim]starting {name}[/]")
                try:
                    made.up()
                except ServiceError as exc:
                    # The stage's fixtures then fail (CI) or skip with the same message.
                    console.print(f"[red]{name} did not start[/]: {exc}")
                    continue
                ours.append(made)
        yield
    finally:
        for made in reversed(ours):
            made.down()


def stage_args(stage: Stage) -> list[str]:
    args = ["-m", stage.marker_expression, "-p", "no:cacheprovider"]
    if stage.workers:
        args += ["-n", str(stage.workers), "--dist", "loadgroup"]
    return args


def table(rows: Sequence[Row], walls: Sequence[tuple[str, float]], before_s: float | None) -> Table:
    shown = Table("tier", "tests", "passed", "failed", "skipped", "seconds", "allowance")
    if before_s is not None:
        shown.add_row("install, lint, prepare", "", "", "", "", f"{before_s:.0f}", "")
    for r in rows:
        over = r.allowance_s is not None and r.seconds > r.allowance_s
        seconds = f"[yellow]{r.seconds:.0f}[/]" if over else f"{r.seconds:.0f}"
        allowance = f"{r.allowance_s:.0f}" if r.allowance_s is not None else ""
        failed = f"[red]{r.failed}[/]" if r.failed else "0"
        shown.add_row(
            r.name, str(r.tests), str(r.passed), failed, str(r.skipped), seconds, allowance
        )
    for name, wall in walls:
        if " + " in name:  # tiers that ran together: their spans overlap
            shown.add_row(f"[dim]{name}, together[/]", "", "", "", "", f"[dim]{wall:.0f}[/]", "")
    total = sum(wall for _, wall in walls) + (before_s or 0)
    shown.add_row(
        "[bold]total[/]",
        str(sum(r.tests for r in rows)),
        str(sum(r.passed for r in rows)),
        str(sum(r.failed for r in rows)),
        str(sum(r.skipped for r in rows)),
        f"[bold]{total:.0f}[/]",
        f"{BUDGET_S}" if before_s is not None else "",
    )
    return shown


def main(argv: list[str]) -> int:
    setup_started = os.environ.get("CHORUS_TEST_STARTED")
    before_s = time.time() - float(setup_started) if setup_started else None
    rows: list[Row] = []
    walls: list[tuple[str, float]] = []
    stages = list(STAGES)
    if argv[:1] == ["--tier"] and len(argv) >= 2:
        wanted = set(argv[1].split(","))
        stages = [s for s in STAGES if wanted & {t.name for t in s.tiers}]
        argv = argv[2:]
    if argv:
        code, log, wall = pytest_run("pytest", ["-p", "no:cacheprovider", *argv])
        tiers = [tier for stage in STAGES for tier in stage.tiers]
        rows += [r for r in rows_of(log, tiers, code) if r.tests or r.failed]
        walls.append(("pytest", wall))
    else:
        for stage in stages:
            console.rule(f"[bold]{stage.name}[/]: " + "; ".join(t.about for t in stage.tiers))
            with started(stage.services):
                code, log, wall = pytest_run(stage.name, stage_args(stage))
            rows += rows_of(log, stage.tiers, code)
            walls.append((stage.name, wall))
    console.print(table(rows, walls, before_s))
    failed = sum(r.failed for r in rows)
    print(
        f"total: {sum(r.passed for r in rows)} passed, {failed} failed, "
        f"{sum(r.skipped for r in rows)} skipped"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
